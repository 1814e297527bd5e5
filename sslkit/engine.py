"""The one training loop every method runs in (chapters and ``python -m sslkit.train``).

The whole training set sits on the device as a uint8 tensor; each step slices a batch of
indices out of it and hands it to the method, which augments on the device. There is no
DataLoader and no per-image Python work.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings

import torch

from . import dist
from .backbones import build_backbone, extract_features
from .config import TrainConfig
from .device import pick_device, seed_everything
from .eval.knn import knn_accuracy
from .eval.metrics import clustering_metrics
from .methods import METHODS
from .methods.base import EpochContext, Method
from .optim import lr_at, make_optimizer
from .runs import RunDir


def resolve_device(cfg: TrainConfig) -> torch.device:
    return pick_device(None if cfg.device == "auto" else cfg.device)


def build_method(cfg: TrainConfig, num_samples: int) -> Method:
    """The method named by ``cfg.method`` with a fresh backbone ``cfg.backbone``.

    The weights are initialised from ``cfg.seed``, so a config alone reproduces a run.
    """
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {sorted(METHODS)}")
    cls = METHODS[cfg.method]
    if cfg.params is None:
        cfg.params = cls.Params()
    sobel = bool(getattr(cfg.params, "sobel", False))
    seed_everything(cfg.seed)
    backbone = build_backbone(cfg.backbone, dataset=cfg.dataset, sobel=sobel)
    return cls(backbone, cfg.params, num_samples)


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def knn_monitor(method: Method, train_images, train_labels, test_images, test_labels, cfg: TrainConfig) -> float:
    """kNN accuracy (%) of the method's features: training images as the bank, test images as queries."""
    ftr = extract_features(method.backbone, train_images)
    fte = extract_features(method.backbone, test_images)
    return knn_accuracy(ftr, train_labels, fte, test_labels, k=cfg.knn_k, temperature=cfg.knn_temperature)


LOSS_AT_LNK = 0.98  # loss / ln K above which a swapped-prediction loss is called stuck ...
UNIFORM_CODES = 0.95  # ... when the codes' entropy H(q) / ln K is also above this (uniform codes)
COLLAPSE_ENTROPY = 0.5  # normalised cluster-size entropy H / ln K below which a run is called collapsed


def collapse_warning(record: dict) -> str | None:
    """A loud message when the epoch's labelling has collapsed (most images in few clusters),
    or when a swapped-prediction loss sits at ln K (SwAV's collapse: uniform codes, the
    prototypes unused) after the first epoch."""
    h = record.get("cluster_entropy")
    if h is not None and h < COLLAPSE_ENTROPY:
        return (f"COLLAPSE at epoch {record.get('epoch')}: cluster-size entropy H/ln K = {h:.2f} "
                f"(< {COLLAPSE_ENTROPY}); the largest cluster holds {record.get('largest_cluster', float('nan')):.0%} "
                "of the images. Check the safeguards (equipartition, empty-cluster re-seeding, uniform sampling).")
    ratio, code_h = record.get("loss_over_lnK"), record.get("code_entropy", 1.0)
    if ratio is not None and record.get("epoch", 0) >= 2 and ratio > LOSS_AT_LNK and code_h > UNIFORM_CODES:
        return (f"COLLAPSE at epoch {record.get('epoch')}: the loss is {ratio:.1%} of ln K, i.e. the codes are "
                "uniform and the prototypes carry no information. Lower epsilon (--params.epsilon), keep the "
                "prototypes frozen longer (--params.freeze_prototypes_steps), or add a queue "
                "(--params.queue_length) when the batch is small compared with the prototypes.")
    return None


def _rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _sync_buffers(method: Method) -> None:
    """Give every process rank 0's normalisation statistics (BN running mean/var), so offline
    steps in eval mode (relabelling, k-means features) see identical networks everywhere."""
    if not dist.is_distributed():
        return
    for name, buf in method.named_buffers():
        if "running_" in name or name.endswith("num_batches_tracked"):
            dist.broadcast(buf, 0)


class Progress:
    """A one-line progress report within an epoch: step, images/s, loss, ETA (to stderr)."""

    def __init__(self, enabled: bool, every: int):
        self.enabled, self.every = enabled, max(1, every)
        self.tty = sys.stderr.isatty()

    def due(self, step: int, steps: int) -> bool:
        """Whether ``step`` (1-based) of ``steps`` is a reporting step: every ``every``th, and the last."""
        return step % self.every == 0 or step == steps

    def update(self, epoch: int, epochs: int, step: int, steps: int, images: int, elapsed: float, loss: float,
               run_eta: float) -> None:
        if not self.enabled or not self.due(step, steps):
            return
        done = int(20 * step / steps)
        line = (f"epoch {epoch}/{epochs} [{'#' * done}{'.' * (20 - done)}] {step}/{steps} "
                f"{images / max(elapsed, 1e-9):.0f} img/s loss {loss:.4f} ETA {_hms(run_eta)}")
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and step == steps:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _check_finite(losses: list[torch.Tensor], start: int, epoch: int) -> int:
    """Raise when a loss since step ``start`` of the epoch is NaN or infinite (one host sync);
    return the number of steps checked. The checkpoint of that epoch is never written."""
    if start >= len(losses):
        return len(losses)
    bad = ~torch.isfinite(torch.stack(losses[start:]))
    if bad.any():
        s = start + int(bad.nonzero()[0])
        raise FloatingPointError(f"loss is {losses[s].item()} at epoch {epoch + 1}, step {s}; "
                                 "lower the learning rate or use precision=fp32")
    return len(losses)


def _mean(values: list) -> float:
    if values and torch.is_tensor(values[0]):
        return torch.stack([v.float() for v in values]).double().mean().item()
    return sum(values) / len(values)


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def fit(method: Method, images: torch.Tensor, cfg: TrainConfig, device: torch.device | None = None,
        labels: torch.Tensor | None = None, eval_data=None, run: RunDir | None = None,
        log=print, true_labels: torch.Tensor | None = None, resume: bool = False,
        progress: bool = False) -> list[dict]:
    """Train ``method`` on ``images`` (uint8, N x 3 x H x W) for ``cfg.epochs`` epochs.

    labels: only for methods with ``uses_labels`` (the supervised baseline).
    eval_data: ``(train_images, train_labels, test_images, test_labels)`` for the kNN monitor
        every ``cfg.knn_every`` epochs; labels are used for evaluation only.
    true_labels: ground truth of the training images, for evaluation only: each epoch logs
        the NMI, ARI and Hungarian accuracy of the method's pseudo-labels against them.
    run: the run directory; receives config, metrics and, after every epoch, ``last.pt``
        (and ``best.pt`` when the kNN monitor improves).
    resume: continue from ``run``'s ``last.pt`` (model with its buffers — pseudo-labels,
        queue, memory bank —, optimiser, step, random state); the result equals an
        uninterrupted run's.
    progress: a progress line within each epoch (images/s, loss, ETA) on stderr.

    Under ``torch.distributed`` (``torchrun``) ``cfg.batch_size`` is the per-process batch:
    every process takes its slice of one global permutation, gradients are averaged by
    DistributedDataParallel, and only the process with ``run`` writes.
    Returns the per-epoch metrics (also appended to ``run``'s metrics.jsonl when given).
    """
    type(method).check_config(cfg)
    device = device or resolve_device(cfg)
    world, rank = dist.world_size(), dist.rank()
    seed_everything(cfg.seed + rank)  # independent augmentations per process
    method.to(device)
    images = images.to(device)
    if method.uses_labels:
        if labels is None:
            raise ValueError(f"method {method.name!r} needs labels")
        labels = labels.to(device)
    n = len(images)
    global_batch = cfg.batch_size * world
    if global_batch > n:
        procs = f" x {world} processes" if world > 1 else ""
        raise ValueError(f"batch_size={cfg.batch_size}{procs} is larger than the {n} training images; lower it")
    steps_per_epoch = n // global_batch  # drop the last incomplete batch
    opt = make_optimizer(cfg, [p for p in method.parameters() if p.requires_grad])
    scaler = torch.amp.GradScaler("cuda") if (cfg.precision == "fp16" and device.type == "cuda") else None
    ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)
    step_fn = method
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # buffers (queue, memory bank, pseudo-labels) are per-method state, not broadcast each step
        step_fn = DDP(method, device_ids=[device.index] if device.type == "cuda" else None,
                      broadcast_buffers=False, find_unused_parameters=True)
    if cfg.compile:
        step_fn = torch.compile(step_fn)
    history: list[dict] = []
    start_epoch = 0
    if resume and run is not None and run.has_checkpoint():
        state = run.load_checkpoint(map_location=device)
        method.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, ctx.step = state["epoch"], state["step"]
        _set_rng_state(state["rng"], device)
        history = run.read_metrics()[:start_epoch]
        run.rewrite_metrics(history)  # drop records of epochs whose checkpoint never landed
        best = state.get("best_knn")
        if log is not None:
            log(f"resumed from {run.path / 'checkpoints' / 'last.pt'} after epoch {start_epoch} (step {ctx.step})")
    else:
        best = None
        if run is not None:
            run.write_config(cfg.to_dict())
    bar = Progress(progress, every=max(1, steps_per_epoch // 20))
    t_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        ctx.epoch = epoch
        t0 = time.time()
        method.train()
        record = {"epoch": epoch + 1}
        _sync_buffers(method)
        record.update(method.on_epoch_start(ctx) or {})
        pseudo = method.pseudo_labels()
        if true_labels is not None and pseudo is not None:
            scores = clustering_metrics(pseudo.cpu(), true_labels.cpu())
            record.update({"nmi_true": scores["nmi"], "ari_true": scores["ari"], "acc_true": scores["acc"]})
        order = dist.broadcast(method.sample_order(ctx).to(device))  # one global order for all processes
        t_train = time.time()
        # per-step losses and logs stay on the device: the host waits for the device only at
        # the reports (every ~5% of an epoch) and at the end of the epoch, not after every step
        losses: list[torch.Tensor] = []
        step_logs: dict[str, list] = {}
        checked = 0
        for s in range(steps_per_epoch):
            glob = order[s * global_batch:(s + 1) * global_batch]
            idx = glob[rank * cfg.batch_size:(rank + 1) * cfg.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, ctx.step, steps_per_epoch, world)
            with _autocast(cfg, device):
                loss, logs = step_fn(images[idx], idx, labels[idx] if method.uses_labels else None)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            ctx.step += 1
            method.on_step_end(ctx)
            losses.append(loss.detach())
            for k, v in (logs or {}).items():
                step_logs.setdefault(k, []).append(v.detach().reshape(()) if torch.is_tensor(v) else float(v))
            if bar.due(s + 1, steps_per_epoch):
                checked = _check_finite(losses, checked, epoch)
                if progress:
                    el = time.time() - t_train
                    per_step = (time.time() - t_start) / max(1, (epoch - start_epoch) * steps_per_epoch + s + 1)
                    bar.update(epoch + 1, cfg.epochs, s + 1, steps_per_epoch, (s + 1) * global_batch, el,
                               torch.stack(losses[-20:]).double().mean().item(),
                               per_step * ((cfg.epochs - epoch) * steps_per_epoch - s - 1))
        _check_finite(losses, checked, epoch)
        dt = time.time() - t0
        record.update({"loss": _mean(losses), "lr": opt.param_groups[0]["lr"],
                       "images_per_s": steps_per_epoch * global_batch / (time.time() - t_train),
                       "epoch_time_s": dt})
        record.update({k: _mean(v) for k, v in step_logs.items()})
        if (eval_data is not None and cfg.knn_every and dist.is_main_process()
                and ((epoch + 1) % cfg.knn_every == 0 or epoch + 1 == cfg.epochs)):
            record["knn_acc"] = knn_monitor(method, *eval_data, cfg)
            record.update(method.monitor(eval_data, cfg))
        warning = collapse_warning(record)
        if warning:
            record["collapse"] = True
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        history.append(record)
        if run is not None:
            run.log(record)
            improved = "knn_acc" in record and (best is None or record["knn_acc"] > best)
            best = record["knn_acc"] if improved else best
            state = {"model": method.state_dict(), "optimizer": opt.state_dict(),
                     "scaler": scaler.state_dict() if scaler is not None else None,
                     "epoch": epoch + 1, "step": ctx.step, "config": cfg.to_dict(), "rng": _rng_state(device),
                     "best_knn": best}
            run.save_checkpoint(state)
            if improved:
                run.save_checkpoint(state, "best")
        if log is not None:
            eta = (time.time() - t_start) / (epoch + 1 - start_epoch) * (cfg.epochs - epoch - 1)
            extra = "".join(f" {k}={v:.2f}" for k, v in record.items()
                            if k not in ("epoch", "loss", "lr", "images_per_s", "epoch_time_s")
                            and isinstance(v, float))
            log(f"epoch {epoch + 1}/{cfg.epochs} loss={record['loss']:.4f}{extra} "
                f"({record['images_per_s']:.0f} img/s, ETA {eta:.0f}s)")
    return history
