"""python -m sslkit.train --method=NAME [--preset=NAME] [--key=value ...]

Runs a method at any scale with the same code the chapters use: the data set as a uint8
tensor on the device, batched augmentation, the generic training loop, the kNN monitor.
The run directory (``--output_dir``, default ``runs/<method>-<dataset>-<preset>``)
receives ``config.json``, ``git_sha.txt``, ``metrics.jsonl``, ``checkpoints/last.pt`` and
``best.pt`` (best kNN monitor), and at the end ``results.json`` (``sslkit.eval``'s numbers:
kNN, linear probe, clustering metrics of the heads).

Running the same command into the same directory (or adding ``--resume``) continues the
run from its last checkpoint; a directory holding a different config is refused. Under
``torchrun --nproc_per_node=N`` the same command trains with DistributedDataParallel
(NCCL on GPUs, gloo on CPU); ``--batch_size`` is then per process.

Examples:
    python -m sslkit.train --method=sela --preset=lab
    python -m sslkit.train --method=sela --preset=cifar10 --device=cuda --precision=bf16
    python -m sslkit.train --method=sela --help        # every option, its default and meaning, the presets
    python -m sslkit.train --method=npid --preset=lab --dataset=~/pets.tar.gz --subset=full   # any image folder
    python -m sslkit.train --config=runs/sela-cifar10-lab/config.json --seed=1    # a stored run's config, changed
    torchrun --nproc_per_node=8 -m sslkit.train --method=swav --preset=cifar10 --device=cuda
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typing

from .config import (ConfigError, TrainConfig, _fields, apply_preset, config_from_dict, field_help, parse_overrides,
                     presets_for, set_value)


def _option_lines(obj, skip=()) -> list[str]:
    """One line per dataclass field: --name, type, default and its declared meaning."""
    lines = []
    for name, tp in _fields(obj).items():
        if name in skip:
            continue
        tname = "|".join(map(str, typing.get_args(tp))) if typing.get_origin(tp) is typing.Literal \
            else getattr(tp, "__name__", str(tp))
        lines.append(f"  --{name:24s} {tname:6s} default {getattr(obj, name)!r:10s}  {field_help(obj, name)}".rstrip())
    return lines


def _describe(cfg: TrainConfig) -> str:
    lines = ["options (--key=value):", *_option_lines(cfg, skip=("params",))]
    if cfg.params is not None:
        lines.append(f"method parameters of {cfg.method!r} (--params.KEY=value or --KEY=value):")
        lines += _option_lines(cfg.params)
    presets = presets_for(cfg.method)
    if presets:
        lines.append(f"presets of {cfg.method!r} (--preset=NAME):")
        for p in presets:
            lines.append(f"  {p.name:10s} {p.description or ''}\n  {'':10s} source: {p.source}")
    return "\n".join(lines)


def build_config(argv: list[str]) -> tuple[TrainConfig, str, bool]:
    """Config from the command line: method, then preset, then overrides. Returns (cfg, preset, help)."""
    from .methods import METHODS

    args = [a for a in argv if a not in ("-h", "--help")]
    wants_help = len(args) != len(argv)
    opts = parse_overrides(args)
    source = opts.pop("config", None)
    if source is not None:  # a stored run's config.json (e.g. a line of chapters/results/runs.jsonl), then overrides
        try:
            saved = json.loads(Path(source).expanduser().read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--config={source}: cannot read a config.json there ({exc})") from None
        if opts.get("method", saved.get("method")) != saved.get("method"):
            raise ConfigError(f"--config={source} is a {saved.get('method')} run; leave --method out")
        opts.pop("method", None)
        cfg = config_from_dict(saved)
        cfg.output_dir = ""
        for key, value in opts.items():
            set_value(cfg, key, value)
        return cfg, "config", wants_help
    method = opts.pop("method", None)
    if method is None:
        if wants_help:
            return TrainConfig(method=""), "", True
        raise ConfigError(f"--method is required; one of {sorted(METHODS)} "
                          "(`python -m sslkit.train --help` lists them with their presets)")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; one of {sorted(METHODS)}")
    cfg = TrainConfig(method=method, params=METHODS[method].Params())
    preset = opts.pop("preset", "")
    if preset:
        apply_preset(cfg, preset)
    for key, value in opts.items():
        set_value(cfg, key, value)
    return cfg, preset, wants_help


def _subset(value: str):
    if value in ("", "full", "none", "None"):
        return None
    return int(value) if value.isdigit() else value


def load_data(cfg: TrainConfig):
    """The (train, test) ``labdata.LabData`` of ``cfg.dataset``: a registered data set (official
    files, or the image-folder copy its environment variable names), or the path of an image
    folder / tar of one, read at 32x32 pixels. Raises ``labdata.LabDataError`` with what to do."""
    import labdata

    subset = _subset(str(cfg.subset))
    if cfg.dataset in labdata.datasets():
        return tuple(labdata.load(cfg.dataset, split, subset=subset) for split in ("train", "test"))
    return tuple(labdata.load_image_folder(cfg.dataset, split, size=32, subset=subset, seed=0)
                 for split in ("train", "test"))


def _dataset_slug(dataset: str) -> str:
    """``cifar10`` -> ``cifar10``; ``/data/pets.tar.gz`` -> ``pets`` (for the default run directory)."""
    name = Path(dataset).name
    for ext in (".tar.gz", ".tgz", ".tar"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    return name or "data"


def _overview() -> str:
    """Every method with its presets, for ``--help`` without ``--method``."""
    from .methods import METHODS

    lines = ["methods (--method=NAME) and their presets (--preset=NAME); "
             "`--method=NAME --help` shows every option:"]
    for name, cls in METHODS.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        lines.append(f"  {name:12s} {doc[0] if doc else ''}")
        for p in presets_for(name):
            lines.append(f"  {'':12s}   --preset={p.name:9s} {p.description or p.source}")
    return "\n".join(lines)


def _check_output_dir(out: Path) -> str | None:
    """Why ``out`` cannot hold a run (a file, or not writable), or None."""
    import os

    if out.exists() and not out.is_dir():
        return f"--output_dir={out} is a file, not a directory; choose another --output_dir"
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"--output_dir={out}: {probe} is not writable by this user; choose another --output_dir"
    return None


def _with_defaults(saved: dict) -> dict:
    """A saved config with the options added to sslkit since it was written at their defaults
    (so an older run directory still resumes); unchanged if it no longer parses."""
    from .config import config_from_dict

    try:
        return json.loads(json.dumps(config_from_dict(saved).to_dict(), default=str))
    except (ConfigError, KeyError, TypeError):
        return saved


SAME_RUN_IGNORES = ("output_dir",)  # where the directory is named from does not make another run


def _config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in SAME_RUN_IGNORES:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_diff(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, list) and isinstance(b, tuple) and a == list(b)):
            diffs.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return diffs


def _init_distributed(cfg: TrainConfig):
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on GPUs, gloo on CPU) and
    return this process's device; otherwise None."""
    import os

    import torch
    import torch.distributed as tdist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    use_cuda = torch.cuda.is_available() and cfg.device not in ("cpu", "mps")
    tdist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _prepare_run_dir(out: Path, cfg: TrainConfig, main_proc: bool):
    """Whether to resume, or an error message: the same config (the directory named by any path)
    resumes; a directory whose earlier run never finished an epoch starts again; another
    config is refused; a finished run has nothing to do (returns "done")."""
    if not (out / "config.json").exists():
        return False
    has_checkpoint = (out / "checkpoints" / "last.pt").exists() or (out / "checkpoints" / "prev.pt").exists()
    if not has_checkpoint:
        if main_proc:
            print(f"{out} holds a run that never finished its first epoch: starting it again with this config")
        return False
    old = json.loads((out / "config.json").read_text())
    diffs = _config_diff(_with_defaults(old), json.loads(json.dumps(cfg.to_dict(), default=str)))
    if diffs:
        return (f"{out} holds another run (config.json differs: {'; '.join(diffs[:5])}). "
                "Choose another --output_dir, or repeat that run's exact options to resume it.")
    if (out / "results.json").exists():
        return "done"
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    resume_flag = any(a in ("--resume", "--resume=true", "--resume=True", "--resume=1") for a in argv)
    argv = [a for a in argv if not a.startswith("--resume")]
    try:
        cfg, preset, wants_help = build_config(argv)
        if wants_help:
            print(__doc__)
            print(_describe(cfg) if cfg.method else _overview())
            return 0
        cfg.validate()
    except ConfigError as exc:
        return _error(str(exc))
    out = Path(cfg.output_dir or f"runs/{cfg.method}-{_dataset_slug(cfg.dataset)}-{preset or 'default'}")
    cfg.output_dir = str(out)
    bad_dir = _check_output_dir(out)
    if bad_dir:
        return _error(bad_dir)
    from . import dist

    main_proc = int(os.environ.get("RANK", "0")) == 0  # the process group is joined later, after these checks
    state = _prepare_run_dir(out, cfg, main_proc)
    if state == "done":
        print(f"{out} holds a finished run of this config (results.json); nothing to do.")
        return 0
    if isinstance(state, str):
        return _error(state)
    if resume_flag and not state:
        return _error(f"--resume: {out} holds no run to resume (no config.json with a checkpoint)")
    resume = state

    import labdata

    from . import engine
    from .eval import evaluate_method
    from .methods import build_method
    from .runs import CheckpointError, RunDir, RunLocked

    run = None
    created = not out.exists()

    def fail(message: str) -> int:  # before training: leave no directory this command created
        if created and main_proc and run is not None:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        return _error(message)

    if main_proc:  # hold the directory before any work: a second run into it is refused at once
        try:
            run = RunDir(out, writer=True, tensorboard=cfg.tensorboard)
            run.lock()
        except RunLocked as exc:
            return _error(str(exc))
        except OSError as exc:
            return _error(f"--output_dir={out}: cannot write there ({exc}); choose another --output_dir")
    try:  # the lock is let go however this ends (an exception's traceback could keep it alive)
        try:
            train, test = load_data(cfg)
        except labdata.LabDataError as exc:
            return fail(str(exc))
        if cfg.batch_size * dist.planned_world_size() > len(train):
            return fail(f"--batch_size={cfg.batch_size} x {dist.planned_world_size()} process(es) is larger than the "
                        f"{len(train)} training images")
        classes = len(train.classes)
        head = getattr(cfg.params, "num_classes", None)  # a method trained on the labels has one output per class
        if head is not None and head != classes:
            return fail(f"--params.num_classes={head} but {cfg.dataset} has {classes} classes; "
                        f"pass --params.num_classes={classes}")
        device = _init_distributed(cfg) or engine.resolve_device(cfg)
        main_proc = dist.is_main_process()
        log = print if main_proc else None
        if main_proc:
            print(f"sslkit.train: {cfg.method} on {cfg.dataset} ({len(train)} train / {len(test)} test images), "
                  f"{cfg.backbone}, {cfg.epochs} epochs, {dist.world_size()} process(es), device {device}, "
                  f"precision {engine.resolve_precision(cfg.precision, device)}"
                  + (" (auto)" if cfg.precision == "auto" else "") + ", "
                  f"output {out}" + (" (resuming)" if resume else ""))
        if run is None:
            run = RunDir(out, writer=False)
        method = build_method(cfg, len(train))
        eval_data = (train.images, train.labels, test.images, test.labels)
        try:
            engine.fit(method, train.images, cfg, device, labels=train.labels if method.uses_labels else None,
                       eval_data=eval_data, run=run, true_labels=train.labels, resume=resume, log=log,
                       progress=main_proc)
        except (CheckpointError, ConfigError) as exc:
            return _error(str(exc))
        finally:
            if dist.is_distributed():
                import torch.distributed as tdist

                tdist.barrier()  # every process is past its last collective before the group goes away
                tdist.destroy_process_group()
        if not main_proc:
            return 0
        results = evaluate_method(method, train.images, train.labels, test.images, test.labels, knn_k=cfg.knn_k,
                                  knn_temperature=cfg.knn_temperature)
        results["device"] = str(device)
        results["precision"] = engine.resolve_precision(cfg.precision, device)  # what "auto" became here
        written = RunDir(out).write_results(results)
        print(f"results: kNN {results['knn_acc']:.2f}%, linear probe {results['linear_acc']:.2f}% -> {written}")
        return 0
    finally:
        if run is not None:
            run.unlock()


if __name__ == "__main__":
    sys.exit(main())
