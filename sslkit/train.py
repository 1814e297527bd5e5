"""python -m sslkit.train --method NAME [--preset NAME] [--key value ...]

Runs a method at any scale with the same code the chapters use: the data set as a uint8
tensor on the device (or, above ``--stream_above_gb`` or with ``--stream``, decoded by DataLoader
worker processes), batched augmentation, the generic training loop, the kNN monitor.
``--dataset`` is a registered data set or a folder (or .tar/.tar.gz) of images: labelled
(``train/<class>/*``, ``test/`` or ``val/<class>/*``) or not (images at any depth; then the
monitors are label-free, and kNN, linear probe and NMI against classes need ``--eval_dataset``).
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
    python -m sslkit.train --method=swav --preset=lab --dataset=~/tiles --subset=full --image_size=64   # no labels
    python -m sslkit.train --method=swav --preset=imagenet --dataset=/data/ILSVRC2012 --device=cuda
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
    """The data (``sslkit.data.RunData``), checked against the config (``validate`` with the data's
    ``DataInfo``: for a folder of images without labels, before any image is decoded)."""
    from . import dist
    from .data import load_run_data
    from .validation import validate

    return load_run_data(cfg, check=lambda info: validate(cfg, info), log=print if dist.rank() == 0 else None)


def _train(cfg, run, data, resume: bool, device):
    """``sk.fit`` on the loaded data; the method it trained."""
    from . import dist, engine
    from .methods import build_method

    log = print if dist.is_main_process() else None
    train = data.train
    method = build_method(cfg, len(train))
    engine.fit(method, train.images, cfg, device, labels=train.labels if method.uses_labels else None,
               eval_data=data.eval, run=run, true_labels=train.labels, resume=resume, log=log,
               progress=log is not None, data_id=data.data_id(cfg.dataset))
    return method


def _evaluate_and_write(cfg, method, data, out: Path, device) -> None:
    from .device import resolve_precision
    from .eval import evaluate_method
    from .eval.labelfree import label_free_report
    from .runs import RunDir

    if data.eval is not None:
        results = evaluate_method(method, *data.eval, knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature)
        line = f"kNN {results['knn_acc']:.2f}%, linear probe {results['linear_acc']:.2f}%"
    else:  # no labels to evaluate against: what the method's own clusters look like
        results = label_free_report(method, len(data.train))
        line = ("no labelled evaluation set (--eval_dataset): " + (
            f"{results['used_clusters']} of {results['k']} clusters used, the largest holds "
            f"{results['largest_cluster']:.0%}" if "k" in results else "features only"))
    results["device"] = str(device)
    results["precision"] = resolve_precision(cfg.precision, device)  # what "auto" became here
    extra = {"image_size": cfg.image_size, "streamed": data.stream, "skipped_files": len(data.skipped)}
    results.update({k: v for k, v in extra.items() if v not in (32, False, 0)})  # the lab's records stay as they were
    written = RunDir(out).write_results(results)
    print(f"results: {line} -> {written}")


def _banner(cfg, data, device, out, resume) -> str:
    from . import dist
    from .device import resolve_precision

    train = data.train
    what = (f"{len(train)} train / {len(data.eval[2])} test images" if data.eval is not None else
            f"{len(train)} images{'' if train.labels is not None else ' without labels'}, no labelled evaluation set")
    return (f"sslkit.train: {cfg.method} on {cfg.dataset} ({what}, {cfg.image_size} px"
            f"{', streamed' if data.stream else ''}), {cfg.backbone}, {cfg.epochs} epochs, {dist.world_size()} "
            f"process(es), device {device}, precision {resolve_precision(cfg.precision, device)}"
            f"{' (auto)' if cfg.precision == 'auto' else ''}, output {out}" + (" (resuming)" if resume else ""))


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

    data = _load(cfg)  # checked against the data before the run directory is made
    main_proc = int(os.environ.get("RANK", "0")) == 0  # the process group is joined inside
    with _run_directory(plan.path, cfg, main_proc) as (run, state):
        device = _init_distributed(cfg) or resolve_device(cfg)
        if main_proc:
            print(_banner(cfg, data, device, plan.path, plan.action == "resume"))
        state["started"] = True
        try:
            method = _train(cfg, run, data, plan.action == "resume", device)
        finally:
            if dist.is_distributed():
                import torch.distributed as tdist

                tdist.barrier()  # every process is past its last collective before the group goes away
                tdist.destroy_process_group()
        if main_proc:
            _evaluate_and_write(cfg, method, data, plan.path, device)


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
