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
    torchrun --nproc_per_node=8 -m sslkit.train --method=swav --preset=cifar10 --device=cuda
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .config import ConfigError, TrainConfig, _fields, apply_preset, parse_overrides, presets_for, set_value


def _field_comments(cls) -> dict[str, str]:
    """The meaning of each dataclass field: the ``# comment`` after it in the source."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.*)$", source, flags=re.MULTILINE)}


def _option_lines(obj, skip=()) -> list[str]:
    """One line per dataclass field: --name, type, default and meaning (types from config._fields)."""
    notes = _field_comments(type(obj))
    return [f"  --{name:24s} {getattr(tp, '__name__', str(tp)):6s} default {getattr(obj, name)!r:10s}"
            f"{'  ' + notes[name] if name in notes else ''}"
            for name, tp in _fields(obj).items() if name not in skip]


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
    method = opts.pop("method", None)
    if method is None:
        if wants_help:
            return TrainConfig(method=""), "", True
        raise ConfigError(f"--method is required; one of {sorted(METHODS)}")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; one of {sorted(METHODS)}")
    cfg = TrainConfig(method=method, params=METHODS[method].Params())
    preset = opts.pop("preset", "")
    if preset:
        apply_preset(cfg, preset)
    for key, value in opts.items():
        set_value(cfg, key, value)
    if not wants_help:  # --help describes any config, even one that would not run
        _validate(cfg)
    return cfg, preset, wants_help


def _validate(cfg: TrainConfig) -> None:
    import labdata

    from .methods import METHODS
    from .backbones import BACKBONES

    if cfg.dataset not in labdata.datasets():
        if not Path(cfg.dataset).expanduser().exists():
            raise ConfigError(f"unknown dataset {cfg.dataset!r}: use one of {labdata.datasets()}, or the path of an "
                              "image folder (train/<class>/*, test/<class>/*) or of a .tar/.tar.gz of one")
        if isinstance(_subset(str(cfg.subset)), str):  # a named subset ('lab', 'mini')
            raise ConfigError(f"--subset={cfg.subset} is defined for {labdata.datasets()} only; with an image folder "
                              "use --subset=full or --subset=N (N images per class)")
    from .optim import OPTIMIZERS, SCHEDULES

    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; one of {list(OPTIMIZERS)}")
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; one of {', '.join(SCHEDULES)}")
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {cfg.backbone!r}; one of {sorted(BACKBONES)}")
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be fp32, bf16 or fp16, not {cfg.precision!r}")
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"--{name} must be positive")
    METHODS[cfg.method].check_config(cfg)
    if cfg.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("--tensorboard=true needs the tensorboard package: pip install tensorboard") from None


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


def _with_defaults(saved: dict) -> dict:
    """A saved config with the options added to sslkit since it was written at their defaults
    (so an older run directory still resumes); unchanged if it no longer parses."""
    from .config import config_from_dict

    try:
        return json.loads(json.dumps(config_from_dict(saved).to_dict(), default=str))
    except (ConfigError, KeyError, TypeError):
        return saved


def _config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    resume_flag = any(a in ("--resume", "--resume=true", "--resume=True", "--resume=1") for a in argv)
    argv = [a for a in argv if not a.startswith("--resume")]
    try:
        cfg, preset, wants_help = build_config(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if wants_help:
        print(__doc__)
        if cfg.method:
            print(_describe(cfg))
        return 0
    out = Path(cfg.output_dir or f"runs/{cfg.method}-{_dataset_slug(cfg.dataset)}-{preset or 'default'}")
    cfg.output_dir = str(out)
    # the same command into the same directory continues that run; another run's directory is refused
    resume = False
    if (out / "config.json").exists():
        old = json.loads((out / "config.json").read_text())
        diffs = _config_diff(_with_defaults(old), json.loads(json.dumps(cfg.to_dict(), default=str)))
        if diffs:
            print(f"error: {out} holds another run (config.json differs: {'; '.join(diffs[:5])}). "
                  "Choose another --output_dir, or repeat that run's exact options to resume it.", file=sys.stderr)
            return 2
        if (out / "results.json").exists():
            print(f"{out} holds a finished run of this config (results.json); nothing to do.")
            return 0
        resume = (out / "checkpoints" / "last.pt").exists()
    elif resume_flag:
        print(f"error: --resume: {out} holds no run to resume (no config.json)", file=sys.stderr)
        return 2

    import labdata

    from . import dist, engine
    from .eval import evaluate_method
    from .runs import RunDir

    try:
        train, test = load_data(cfg)
    except labdata.LabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.batch_size > len(train):
        print(f"error: --batch_size={cfg.batch_size} is larger than the {len(train)} training images",
              file=sys.stderr)
        return 2
    device = _init_distributed(cfg) or engine.resolve_device(cfg)
    main_proc = dist.is_main_process()
    log = print if main_proc else None
    if main_proc:
        print(f"sslkit.train: {cfg.method} on {cfg.dataset} ({len(train)} train / {len(test)} test images), "
              f"{cfg.backbone}, {cfg.epochs} epochs, {dist.world_size()} process(es), device {device}, "
              f"output {out}" + (" (resuming)" if resume else ""))
    method = engine.build_method(cfg, len(train))
    run = RunDir(out, writer=main_proc, tensorboard=cfg.tensorboard)
    eval_data = (train.images, train.labels, test.images, test.labels)
    try:
        engine.fit(method, train.images, cfg, device, labels=train.labels if method.uses_labels else None,
                   eval_data=eval_data, run=run, true_labels=train.labels, resume=resume, log=log,
                   progress=main_proc)
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
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: kNN {results['knn_acc']:.2f}%, linear probe {results['linear_acc']:.2f}% -> {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
