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
from dataclasses import dataclass

import torch

from . import dist
from .backbones import extract_features
from .config import TrainConfig
from .device import pick_device, resolve_precision, seed_everything
from .eval.knn import knn_accuracy
from .eval.metrics import clustering_metrics
from .methods.base import EpochContext, Method
from .optim import lr_at, make_optimizer
from .runs import CheckpointError, RunDir


def resolve_device(cfg: TrainConfig) -> torch.device:
    return pick_device(None if cfg.device == "auto" else cfg.device)


def _autocast(precision: str, device: torch.device):
    """On CUDA the whole training step runs under autocast (bf16 or fp16); elsewhere nothing
    here: bf16 off CUDA is the backbone's own autocast (``_backbone_precision``).
    ``precision``: the resolved one (``resolve_precision``: never ``auto``)."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _backbone_precision(method: Method, precision: str, device: torch.device) -> None:
    """bf16 off CUDA: the backbone's convolutions run in bf16 while training (CPUs with bf16
    dot products do them about twice as fast); its output, the heads, Sinkhorn, k-means, the
    losses and every evaluation stay in fp32. ``precision``: the resolved one."""
    if hasattr(method.backbone, "autocast_dtype"):
        method.backbone.autocast_dtype = (torch.bfloat16 if precision == "bf16" and device.type != "cuda"
                                          else None)


def knn_monitor(method: Method, train_images, train_labels, test_images, test_labels, cfg: TrainConfig) -> float:
    """kNN accuracy (%) of the method's features: training images as the bank, test images as queries."""
    was = method.training
    ftr = extract_features(method.backbone, train_images)
    fte = extract_features(method.backbone, test_images)
    method.train(was)  # evaluation leaves the method in the mode it found it
    return knn_accuracy(ftr, train_labels, fte, test_labels, k=cfg.knn_k, temperature=cfg.knn_temperature)


COLLAPSE_ENTROPY = 0.5  # normalised cluster-size entropy H / ln K below which a run is called collapsed


def collapse_warning(record: dict, method: Method | None = None) -> str | None:
    """A loud message when the epoch's labelling has collapsed (most images in few clusters),
    or when the method itself sees its own kind of collapse in the record
    (``Method.collapse_advice``: SwAV's loss sitting at ln K)."""
    h = record.get("cluster_entropy")
    if h is not None and h < COLLAPSE_ENTROPY:
        return (f"COLLAPSE at epoch {record.get('epoch')}: cluster-size entropy H/ln K = {h:.2f} "
                f"(< {COLLAPSE_ENTROPY}); the largest cluster holds {record.get('largest_cluster', float('nan')):.0%} "
                "of the images. Check the safeguards (equipartition, empty-cluster re-seeding, uniform sampling).")
    return method.collapse_advice(record) if method is not None else None


def _rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _own_rng_state(saved, device: torch.device, cfg: TrainConfig, epoch: int, log) -> None:
    """Restore this process's random state from a checkpoint's per-process list (a dict in
    checkpoints written before that list existed). With another number of processes than
    the run was saved with, each process starts a fresh stream instead (and says so)."""
    states = saved if isinstance(saved, list) else [saved]
    world, rank = dist.world_size(), dist.rank()
    if len(states) == world:
        _set_rng_state(states[rank], device)
        return
    seed_everything(cfg.seed + rank + 1_000_003 * epoch)
    if log is not None:
        log(f"note: the checkpoint holds the random state of {len(states)} process(es), this run has {world}: "
            "augmentations continue from fresh seeds (the result will not be bitwise equal to an uninterrupted run)")


def _own_buffers(method: Method) -> dict:
    """The buffers that are each process's own (``Method.per_process_buffers``), on the CPU."""
    named = dict(method.named_buffers())
    return {k: named[k].detach().cpu() for k in method.per_process_buffers}


def _load_own_buffers(method: Method, saved: list | None) -> None:
    """Each process takes back its own share of per-process state (the model's state_dict holds
    rank 0's); with another number of processes the shares cannot be matched: an error."""
    if not method.per_process_buffers or saved is None:
        return
    if len(saved) != dist.world_size():
        raise CheckpointError(f"the checkpoint was written by {len(saved)} process(es) and holds per-process state "
                         f"({', '.join(method.per_process_buffers)}); resume it with {len(saved)} process(es)")
    named = dict(method.named_buffers())
    for k, v in saved[dist.rank()].items():
        named[k].copy_(v)


def _sync_buffers(method: Method) -> None:
    """Give every process rank 0's normalisation statistics (BN running mean/var), so offline
    steps in eval mode (relabelling, k-means features) see identical networks everywhere,
    and every replica (not only the checkpointed one) ends an epoch with the same state."""
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


@dataclass
class _Loop:
    """What one call of ``fit`` trains with, set up once: the method (and the DDP/compiled
    wrapper that runs its step), the optimiser, the data on the device, the batch geometry."""

    method: Method
    step_fn: object
    opt: torch.optim.Optimizer
    scaler: object
    ctx: EpochContext
    images: torch.Tensor
    labels: torch.Tensor | None
    cfg: TrainConfig
    device: torch.device
    precision: str  # the resolved precision (cfg.precision "auto" becomes bf16 or fp32)
    world: int
    rank: int
    global_batch: int
    steps_per_epoch: int


def _set_up(method: Method, images, cfg: TrainConfig, device, labels) -> _Loop:
    """Device, seeds, optimiser, DDP/compile wrappers; nothing is trained yet."""
    world, rank = dist.world_size(), dist.rank()
    seed_everything(cfg.seed + rank)  # independent augmentations per process
    method.to(device)
    precision = resolve_precision(cfg.precision, device)
    _backbone_precision(method, precision, device)
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
    opt = make_optimizer(cfg, [p for p in method.parameters() if p.requires_grad])
    scaler = torch.amp.GradScaler("cuda") if (precision == "fp16" and device.type == "cuda") else None
    ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)
    step_fn = method
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # buffers (queue, memory bank, pseudo-labels) are per-method state, not broadcast each step
        step_fn = DDP(method, device_ids=[device.index] if device.type == "cuda" else None,
                      broadcast_buffers=False, find_unused_parameters=True)
    if cfg.compile:
        step_fn = torch.compile(step_fn)
    return _Loop(method, step_fn, opt, scaler, ctx, images, labels, cfg, device, precision, world, rank, global_batch,
                 n // global_batch)  # drop the last incomplete batch


def _start_or_resume(loop: _Loop, run: RunDir | None, resume: bool, log) -> tuple[int, list, float | None]:
    """Epoch to start from, the history so far and the best kNN so far: from ``run``'s last
    checkpoint when resuming (model, buffers, optimiser, step, each process's random state),
    else from scratch. Either way metrics.jsonl is rewritten to the epochs the checkpoint
    holds, so a run killed between its metrics and its checkpoint never repeats an epoch."""
    if not (resume and run is not None and run.has_checkpoint()):
        if run is not None:
            run.write_config(loop.cfg.to_dict())
            run.rewrite_metrics([])
        return 0, [], None
    state = run.load_checkpoint(map_location=loop.device)
    loop.method.load_state_dict(state["model"])
    loop.opt.load_state_dict(state["optimizer"])
    if loop.scaler is not None and state.get("scaler"):
        loop.scaler.load_state_dict(state["scaler"])
    start_epoch, loop.ctx.step = state["epoch"], state["step"]
    _own_rng_state(state["rng"], loop.device, loop.cfg, start_epoch, log)
    _load_own_buffers(loop.method, state.get("per_process"))
    history = state.get("history") or run.read_metrics()[:start_epoch]
    run.rewrite_metrics(history)  # drop records of epochs whose checkpoint never landed
    if log is not None:
        log(f"resumed from {run.path / 'checkpoints' / 'last.pt'} after epoch {start_epoch} (step {loop.ctx.step})")
    return start_epoch, history, state.get("best_knn")


def _begin_epoch(loop: _Loop, epoch: int, true_labels) -> dict:
    """The method's offline work (relabelling, k-means, ...), then the same parameters on
    every process: a layer a method re-initialised with its own process's random state
    (DeepCluster's classifier) is given rank 0's values, and its optimiser state is dropped."""
    method, ctx = loop.method, loop.ctx
    ctx.epoch = epoch
    method.train()
    record = {"epoch": epoch + 1, "precision": loop.precision}
    _sync_buffers(method)
    record.update(method.on_epoch_start(ctx) or {})
    for p in method.reinitialized_parameters():
        loop.opt.state.pop(p, None)
    dist.broadcast_module(method)
    pseudo = method.pseudo_labels()
    if true_labels is not None and pseudo is not None:
        scores = clustering_metrics(pseudo.cpu(), true_labels.cpu())
        record.update({"nmi_true": scores["nmi"], "ari_true": scores["ari"], "acc_true": scores["acc"]})
    return record


def _train_epoch(loop: _Loop, epoch: int, bar: Progress, t_start: float, start_epoch: int) -> dict:
    """One pass over the data in the method's order: per-step losses and logs stay on the
    device; the host waits for it only at the reports (every ~5% of an epoch) and at the end."""
    method, cfg, opt, ctx = loop.method, loop.cfg, loop.opt, loop.ctx
    order = dist.broadcast(method.sample_order(ctx).to(loop.device))  # one global order for all processes
    t_train = time.time()
    losses: list[torch.Tensor] = []
    step_logs: dict[str, list] = {}
    checked = 0
    steps = loop.steps_per_epoch
    for s in range(steps):
        glob = order[s * loop.global_batch:(s + 1) * loop.global_batch]
        idx = glob[loop.rank * cfg.batch_size:(loop.rank + 1) * cfg.batch_size]
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, ctx.step, steps, loop.world)
        with _autocast(loop.precision, loop.device):
            loss, logs = loop.step_fn(loop.images[idx], idx, loop.labels[idx] if method.uses_labels else None)
        opt.zero_grad(set_to_none=True)
        if loop.scaler is not None:
            loop.scaler.scale(loss).backward()
            loop.scaler.step(opt)
            loop.scaler.update()
        else:
            loss.backward()
            opt.step()
        ctx.step += 1
        method.on_step_end(ctx)
        losses.append(loss.detach())
        for k, v in (logs or {}).items():
            step_logs.setdefault(k, []).append(v.detach().reshape(()) if torch.is_tensor(v) else float(v))
        if bar.due(s + 1, steps):
            checked = _check_finite(losses, checked, epoch)
            if bar.enabled:
                done_steps = (epoch - start_epoch) * steps + s + 1
                per_step = (time.time() - t_start) / done_steps
                bar.update(epoch + 1, cfg.epochs, s + 1, steps, (s + 1) * loop.global_batch, time.time() - t_train,
                           torch.stack(losses[-20:]).double().mean().item(),
                           per_step * ((cfg.epochs - epoch) * steps - s - 1))
    _check_finite(losses, checked, epoch)
    out = {"loss": _mean(losses), "lr": opt.param_groups[0]["lr"],
           "images_per_s": steps * loop.global_batch / (time.time() - t_train)}
    out.update({k: _mean(v) for k, v in step_logs.items()})
    return out


def _end_epoch(loop: _Loop, record: dict, history: list, best, run: RunDir | None, eval_data):
    """Monitors (kNN, the method's own, collapse), identical BN statistics on every process,
    then the checkpoint (with the history) and only after it the metrics line."""
    method, cfg, epoch = loop.method, loop.cfg, record["epoch"]
    if (eval_data is not None and cfg.knn_every and dist.is_main_process()
            and (epoch % cfg.knn_every == 0 or epoch == cfg.epochs)):
        record["knn_acc"] = knn_monitor(method, *eval_data, cfg)
        record.update(method.monitor(eval_data, cfg))
    warning = collapse_warning(record, method)
    if warning:
        record["collapse"] = True
        warnings.warn(warning, RuntimeWarning, stacklevel=3)
    history.append(record)
    _sync_buffers(method)
    rngs = dist.all_gather_object(_rng_state(loop.device))  # every process's own random state ...
    own = dist.all_gather_object(_own_buffers(method))  # ... and its own share of the method state
    if run is not None:
        improved = "knn_acc" in record and (best is None or record["knn_acc"] > best)
        best = record["knn_acc"] if improved else best
        state = {"model": method.state_dict(), "optimizer": loop.opt.state_dict(),
                 "scaler": loop.scaler.state_dict() if loop.scaler is not None else None,
                 "epoch": epoch, "step": loop.ctx.step, "config": cfg.to_dict(), "rng": rngs,
                 "best_knn": best, "num_samples": method.num_samples, "world_size": loop.world,
                 "history": history, "per_process": own}
        run.save_checkpoint(state)
        if improved:
            run.save_checkpoint(state, "best")
        run.log(record)
    return best


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

    The config is validated first (``TrainConfig.validate``: the same checks as the command
    line), so nothing starts with a setting that cannot run.

    Under ``torch.distributed`` (``torchrun``) ``cfg.batch_size`` is the per-process batch:
    every process takes its slice of one global permutation, gradients are averaged by
    DistributedDataParallel, and only the process with a writing ``run`` writes. Every
    process ends every epoch with the same parameters and method state.
    Returns the per-epoch metrics (also appended to ``run``'s metrics.jsonl when given).

    The loop in four named parts: ``_set_up``, ``_start_or_resume``, then per epoch
    ``_begin_epoch`` (the method's offline work), ``_train_epoch`` and ``_end_epoch``.
    """
    cfg.validate(method=type(method))
    loop = _set_up(method, images, cfg, device or resolve_device(cfg), labels)
    start_epoch, history, best = _start_or_resume(loop, run, resume, log)
    bar = Progress(progress, every=max(1, loop.steps_per_epoch // 20))
    t_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        record = _begin_epoch(loop, epoch, true_labels)
        record.update(_train_epoch(loop, epoch, bar, t_start, start_epoch))
        record["epoch_time_s"] = time.time() - t0
        best = _end_epoch(loop, record, history, best, run, eval_data)
        if log is not None:
            eta = (time.time() - t_start) / (epoch + 1 - start_epoch) * (cfg.epochs - epoch - 1)
            extra = "".join(f" {k}={v:.2f}" for k, v in record.items()
                            if k not in ("epoch", "loss", "lr", "images_per_s", "epoch_time_s")
                            and isinstance(v, float))
            log(f"epoch {epoch + 1}/{cfg.epochs} loss={record['loss']:.4f}{extra} "
                f"({record['images_per_s']:.0f} img/s, ETA {eta:.0f}s)")
    return history
