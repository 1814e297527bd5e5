"""python -m sslkit.train --method NAME [--preset NAME] [--key value ...]

Runs a method at any scale with the same code the chapters use: the data set as a uint8
tensor on the device, batched augmentation, the generic training loop, the kNN monitor.
The run directory (``--output_dir``, default ``runs/<method>-<dataset>-<preset>``)
receives ``config.json``, ``git_sha.txt``, ``data.json`` (which data it trains on),
``metrics.jsonl``, ``checkpoints/last.pt`` and ``best.pt`` (best kNN monitor), and at the
end ``results.json`` (``sslkit.eval``'s numbers: kNN, linear probe, clustering metrics).

Running the same command into the same directory (or adding ``--resume``) continues the
run from its last checkpoint, on the same data only. A directory that holds another run,
a run's records without a checkpoint, or files no run wrote is refused. Under
``torchrun --nproc_per_node=N`` the same command trains with DistributedDataParallel
(NCCL on GPUs, gloo on CPU); ``--batch_size`` is then per process.

Examples:
    python -m sslkit.train --method sela --preset lab
    python -m sslkit.train --method=sela --preset=cifar10 --device=cuda --precision=bf16
    python -m sslkit.train --method sela --help        # every option, its default and meaning, the presets
    python -m sslkit.train --method=npid --preset=lab --dataset=~/pets.tar.gz --subset=full   # any image folder
    python -m sslkit.train --config=runs/sela-cifar10-lab/config.json --seed=1    # a stored run's config, changed
    torchrun --nproc_per_node=8 -m sslkit.train --method=swav --preset=cifar10 --device=cuda
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from .config import ConfigError


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _init_distributed(cfg):
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on GPUs, gloo on CPU) and
    return this process's device; otherwise None."""
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


@contextlib.contextmanager
def _run_directory(out: Path, cfg, main_proc: bool):
    """Hold ``out`` for this run (an OS lock; a second run into it is refused at once), and remove
    it again if this command created it and fails before training starts."""
    from .runs import RunDir

    created = not out.exists()
    run = RunDir(out, writer=main_proc, tensorboard=cfg.tensorboard and main_proc)
    state = {"started": False}
    try:
        run.lock()
        yield run, state
    except BaseException:
        if created and main_proc and not state["started"]:
            run.unlock()
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        run.unlock()


def _load(cfg):
    """The data, checked against the config (``validate`` with the data's ``DataInfo``)."""
    from .data import info_of, load_data
    from .validation import validate

    train, test = load_data(cfg)
    validate(cfg, info_of(train, cfg.dataset))
    return train, test


def _train(cfg, run, train, test, resume: bool, device):
    """``sk.fit`` on the loaded data; the method it trained."""
    from . import dist, engine
    from .data import fingerprint
    from .methods import build_method

    log = print if dist.is_main_process() else None
    method = build_method(cfg, len(train))
    data_id = {"fingerprint": fingerprint(train.images, train.labels), "num_samples": len(train),
               "source": f"{cfg.dataset} ({train.source})" if train.source else cfg.dataset}
    engine.fit(method, train.images, cfg, device, labels=train.labels if method.uses_labels else None,
               eval_data=(train.images, train.labels, test.images, test.labels), run=run, true_labels=train.labels,
               resume=resume, log=log, progress=log is not None, data_id=data_id)
    return method


def _evaluate_and_write(cfg, method, train, test, out: Path, device) -> None:
    from .device import resolve_precision
    from .eval import evaluate_method
    from .runs import RunDir

    results = evaluate_method(method, train.images, train.labels, test.images, test.labels, knn_k=cfg.knn_k,
                              knn_temperature=cfg.knn_temperature)
    results["device"] = str(device)
    results["precision"] = resolve_precision(cfg.precision, device)  # what "auto" became here
    written = RunDir(out).write_results(results)
    print(f"results: kNN {results['knn_acc']:.2f}%, linear probe {results['linear_acc']:.2f}% -> {written}")


def _banner(cfg, train, test, device, out, resume) -> str:
    from . import dist
    from .device import resolve_precision

    return (f"sslkit.train: {cfg.method} on {cfg.dataset} ({len(train)} train / {len(test)} test images), "
            f"{cfg.backbone}, {cfg.epochs} epochs, {dist.world_size()} process(es), device {device}, precision "
            f"{resolve_precision(cfg.precision, device)}{' (auto)' if cfg.precision == 'auto' else ''}, output {out}"
            + (" (resuming)" if resume else ""))


def _checks(argv):
    """Everything that needs no data, before anything is read or written: (args, plan), or raises."""
    from .cli import parse_train_args
    from .data import dataset_slug
    from .run_plan import plan_run
    from .validation import validate

    args = parse_train_args(sys.argv[1:] if argv is None else argv)
    if args.help:
        return args, None
    cfg = validate(args.cfg)
    cfg.output_dir = str(Path(cfg.output_dir or f"runs/{cfg.method}-{dataset_slug(cfg.dataset)}-"
                                                f"{args.preset or 'default'}").expanduser())
    plan = plan_run(cfg.output_dir, cfg.to_dict(), writer=int(os.environ.get("RANK", "0")) == 0)
    if args.resume and plan.action not in ("resume", "done"):
        raise ConfigError(f"--resume: {plan.path} holds no run to resume (no checkpoint of this config)")
    return args, plan


def _run(cfg, plan) -> None:
    """Load and check the data, hold the run directory, train, evaluate, write the results."""
    from . import dist
    from .engine import resolve_device

    train, test = _load(cfg)  # checked against the data before the run directory is made
    main_proc = int(os.environ.get("RANK", "0")) == 0  # the process group is joined inside
    with _run_directory(plan.path, cfg, main_proc) as (run, state):
        device = _init_distributed(cfg) or resolve_device(cfg)
        if main_proc:
            print(_banner(cfg, train, test, device, plan.path, plan.action == "resume"))
        state["started"] = True
        try:
            method = _train(cfg, run, train, test, plan.action == "resume", device)
        finally:
            if dist.is_distributed():
                import torch.distributed as tdist

                tdist.barrier()  # every process is past its last collective before the group goes away
                tdist.destroy_process_group()
        if main_proc:
            _evaluate_and_write(cfg, method, train, test, plan.path, device)


def main(argv: list[str] | None = None) -> int:
    import labdata

    from .cli import describe, overview
    from .runs import CheckpointError, RunDirError, RunLocked

    try:
        args, plan = _checks(argv)
        if plan is None:
            print(__doc__ + "\n" + (describe(args.cfg) if args.cfg.method else overview()))
            return 0
        if plan.action == "done":
            print(f"{plan.path} holds a finished run of this config (results.json); nothing to do.")
            return 0
        if plan.action == "restart":
            print(f"{plan.path} holds a run that never finished its first epoch: starting it again with this config")
        _run(args.cfg, plan)
        return 0
    except (ConfigError, labdata.LabDataError, CheckpointError, RunLocked, RunDirError) as exc:
        return _error(str(exc))
    except FloatingPointError as exc:  # a run that diverged: its last finite checkpoint is kept
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        return _error(f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the path and its permissions")


if __name__ == "__main__":
    sys.exit(main())
