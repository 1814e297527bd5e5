"""The one training loop every method runs in (chapters and ``python -m sslkit.train``).

The whole training set sits on the device as a uint8 tensor; each step slices a batch of
indices out of it and hands it to the method, which augments on the device. There is no
DataLoader and no per-image Python work. Images that do not fit come as an
``sslkit.imagesource.ImageSource`` instead: the same indices, in the same order, are decoded
by DataLoader worker processes a few batches ahead (each process's share under torchrun), and
the method augments them on the device as before. ``train_step`` is the step itself, which the
benchmarks time too; ``fit`` is the loop around it, with hooks (``sslkit.callbacks``).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field

import torch

from . import dist
from .backbones import extract_features
from .config import TrainConfig
from .data import fingerprint
from .device import pick_device, resolve_precision, seed_everything
from .eval.knn import knn_accuracy
from .eval.metrics import clustering_metrics
from .imagesource import epoch_batches, is_source
from .methods.base import EpochContext, Method
from .optim import lr_at, make_optimizer
from .precision import autocast, grad_scaler, set_backbone_precision
from .process_state import (check_finite_state, load_own_buffers, own_buffers, restore_own_rng, rng_state,
                            sync_buffers)
from .runs import CheckpointError, RunDir


def resolve_device(cfg: TrainConfig) -> torch.device:
    return pick_device(None if cfg.device == "auto" else cfg.device)


def train_step(method: Method, optimizer, images, indices, labels=None, *, precision: str, device: torch.device,
               scaler=None, forward=None, ctx: EpochContext | None = None, callbacks=(), loop=None):
    """One optimiser step of ``method`` on a batch (uint8 images on the device and their indices):
    the forward pass under the precision's autocast (``forward``: a DDP or compiled wrapper of the
    method), each callback's ``on_loss``, backward (loss-scaled with ``scaler``), the optimiser
    step, then the method's ``on_step_end`` (with ``ctx``, whose step count it advances).
    Returns ``(loss, logs)``."""
    with autocast(precision, device):
        loss, logs = (forward or method)(images, indices, labels)
    for cb in callbacks:
        changed = cb.on_loss(loop, loss, logs)
        loss = loss if changed is None else changed
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    if ctx is not None:
        ctx.step += 1
        method.on_step_end(ctx)
    return loss, logs


def knn_monitor(method: Method, train_images, train_labels, test_images, test_labels, cfg: TrainConfig) -> float:
    """kNN accuracy (%) of the method's features: training images as the bank, test images as queries."""
    ftr = extract_features(method.backbone, train_images)
    fte = extract_features(method.backbone, test_images)
    return knn_accuracy(ftr, train_labels, fte, test_labels, k=cfg.knn_k, temperature=cfg.knn_temperature)


def collapse_warning(record: dict, method: Method | type[Method] | None = None) -> str | None:
    """The method's collapse check on an epoch's record (``Method.collapse_advice``)."""
    return (method or Method).collapse_advice(record)


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


@dataclass
class Loop:
    """What one call of ``fit`` trains with, set up once: the method (and the DDP/compiled
    wrapper that runs its step), the optimiser, the data on the device, the batch geometry,
    the callbacks; ``epoch`` and ``batch`` say where it is (callbacks read them)."""

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
    global_batch: int
    steps_per_epoch: int
    data_id: dict
    callbacks: list = field(default_factory=list)
    epoch: int = 0
    batch: int = 0
    first_epoch: int = 0  # where this call of fit started (after a resume: the checkpoint's epoch)


def _set_up(method: Method, images, cfg: TrainConfig, device, labels, data_id, callbacks) -> Loop:
    """Device, seeds, optimiser, DDP/compile wrappers; nothing is trained yet."""
    world, rank = dist.world_size(), dist.rank()
    seed_everything(cfg.seed + rank)  # independent augmentations per process
    method.to(device)
    precision = resolve_precision(cfg.precision, device)
    set_backbone_precision(method, precision, device)
    images = images if is_source(images) else images.to(device)  # a source is decoded batch by batch
    if method.uses_labels:
        if labels is None:
            raise ValueError(f"method {method.name!r} needs labels")
        labels = labels.to(device)
    opt = make_optimizer(cfg, [p for p in method.parameters() if p.requires_grad])
    ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=len(images), optimizer=opt)
    step_fn = method
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # buffers (queue, memory bank, pseudo-labels) are per-method state, not broadcast each step
        step_fn = DDP(method, device_ids=[device.index] if device.type == "cuda" else None,
                      broadcast_buffers=False, find_unused_parameters=True)
    if cfg.compile:
        step_fn = torch.compile(step_fn)
    global_batch = cfg.batch_size * world
    data_id = data_id or {"fingerprint": images.fingerprint if is_source(images) else fingerprint(images, labels),
                          "num_samples": len(images)}
    return Loop(method, step_fn, opt, grad_scaler(precision, device), ctx, images, labels, cfg, device, precision,
                global_batch, len(images) // global_batch, data_id, list(callbacks))  # drop the last incomplete batch


def _check_same_data(loop: Loop, state: dict, path) -> None:
    """Refuse to resume a checkpoint on other training data than it was trained on."""
    saved = state.get("data") or {"num_samples": state.get("num_samples")}
    here = loop.data_id
    if saved.get("num_samples") is not None and saved["num_samples"] != here["num_samples"]:
        raise CheckpointError(f"{path} was trained on {saved['num_samples']} images ({saved.get('source') or 'its data'})"
                              f", this run has {here['num_samples']} ({here.get('source') or 'the data given'}): "
                              "resume it on the same data, or train into another --output_dir")
    if saved.get("fingerprint") and saved["fingerprint"] != here["fingerprint"]:
        raise CheckpointError(f"{path} was trained on other images (data {saved['fingerprint']} from "
                              f"{saved.get('source') or 'its data'}) than this run has (data {here['fingerprint']} "
                              f"from {here.get('source') or 'the data given'}): resume it on the same data, or train "
                              "into another --output_dir")


def _start_or_resume(loop: Loop, run: RunDir | None, resume: bool, log) -> tuple[int, list, float | None]:
    """Epoch to start from, the history so far and the best kNN so far: from ``run``'s last
    checkpoint when resuming (model, buffers, optimiser, step, each process's random state),
    else from scratch. Either way metrics.jsonl is rewritten to the epochs the checkpoint
    holds, so a run killed between its metrics and its checkpoint never repeats an epoch."""
    if not (resume and run is not None and run.has_checkpoint()):
        if run is not None:
            run.write_config(loop.cfg.to_dict(), loop.data_id)
            run.rewrite_metrics([])
        return 0, [], None
    state = run.load_checkpoint(map_location=loop.device)
    _check_same_data(loop, state, run.path / "checkpoints" / "last.pt")
    loop.method.load_state_dict(state["model"])
    loop.opt.load_state_dict(state["optimizer"])
    if loop.scaler is not None and state.get("scaler"):
        loop.scaler.load_state_dict(state["scaler"])
    start_epoch, loop.ctx.step = state["epoch"], state["step"]
    restore_own_rng(state["rng"], loop.device, loop.cfg.seed, start_epoch, log)
    load_own_buffers(loop.method, state.get("per_process"))
    history = state.get("history") or run.read_metrics()[:start_epoch]
    run.rewrite_metrics(history)  # drop records of epochs whose checkpoint never landed
    if log is not None:
        log(f"resumed from {run.path / 'checkpoints' / 'last.pt'} after epoch {start_epoch} (step {loop.ctx.step})")
    return start_epoch, history, state.get("best_knn")


def _begin_epoch(loop: Loop, epoch: int, true_labels) -> dict:
    """The method's offline work (relabelling, k-means, ...), then the same parameters on
    every process: a layer a method re-initialised with its own process's random state
    (DeepCluster's classifier) is given rank 0's values, and its optimiser state is dropped."""
    method, ctx = loop.method, loop.ctx
    ctx.epoch = loop.epoch = epoch
    method.train()
    record = {"epoch": epoch + 1, "precision": loop.precision}
    sync_buffers(method)
    record.update(method.on_epoch_start(ctx) or {})
    for p in method.reinitialized_parameters():
        loop.opt.state.pop(p, None)
    dist.broadcast_module(method)
    pseudo = method.pseudo_labels()
    if true_labels is not None and pseudo is not None:
        scores = clustering_metrics(pseudo.cpu(), true_labels.cpu(), method.cluster_count(method.params))
        record.update({"nmi_true": scores["nmi"], "ari_true": scores["ari"], "majority_acc_true": scores["majority_acc"]})
    return record


def _train_epoch(loop: Loop, epoch: int, bar) -> dict:
    """One pass over the data in the method's order: per-step losses and logs stay on the
    device; the host waits for it only at the reports (every ~5% of an epoch) and at the end."""
    method, cfg, ctx = loop.method, loop.cfg, loop.ctx
    order = dist.broadcast(method.sample_order(ctx).to(loop.device))  # one global order for all processes
    t_train = time.time()
    losses: list[torch.Tensor] = []
    step_logs: dict[str, list] = {}
    checked, steps, every = 0, loop.steps_per_epoch, max(1, loop.steps_per_epoch // 20)
    batches = epoch_batches(loop.images, order, steps, loop.global_batch, cfg.batch_size, dist.rank(), loop.device)
    for s in range(steps):
        loop.batch = s
        for cb in loop.callbacks:
            cb.on_batch_start(loop)
        idx, images = next(batches)
        for group in loop.opt.param_groups:
            group["lr"] = lr_at(cfg, ctx.step, steps, dist.world_size())
        loss, logs = train_step(method, loop.opt, images, idx,
                                loop.labels[idx] if method.uses_labels else None, precision=loop.precision,
                                device=loop.device, scaler=loop.scaler, forward=loop.step_fn, ctx=ctx,
                                callbacks=loop.callbacks, loop=loop)
        losses.append(loss.detach())
        for cb in loop.callbacks:
            cb.on_batch_end(loop, loss, logs)
        for k, v in (logs or {}).items():
            step_logs.setdefault(k, []).append(v.detach().reshape(()) if torch.is_tensor(v) else float(v))
        if (s + 1) % every == 0 or s + 1 == steps:
            checked = _check_finite(losses, checked, epoch)
            if bar is not None:
                bar.set_postfix_str(f"epoch {epoch + 1}/{cfg.epochs} loss {torch.stack(losses[-20:]).double().mean():.4f} "
                                    f"{(s + 1) * loop.global_batch / max(time.time() - t_train, 1e-9):.0f} img/s",
                                    refresh=False)
                bar.update((epoch - loop.first_epoch) * steps + s + 1 - bar.n)
    _check_finite(losses, checked, epoch)
    out = {"loss": _mean(losses), "lr": loop.opt.param_groups[0]["lr"],
           "images_per_s": steps * loop.global_batch / (time.time() - t_train)}
    out.update({k: _mean(v) for k, v in step_logs.items()})
    return out


def _end_epoch(loop: Loop, record: dict, history: list, best, run: RunDir | None, eval_data):
    """Monitors (kNN, the method's own, collapse), the finite-state check, identical BN statistics
    on every process, then the checkpoint (with the history) and only after it the metrics line."""
    method, cfg, epoch = loop.method, loop.cfg, record["epoch"]
    if (eval_data is not None and cfg.knn_every and dist.is_main_process()
            and (epoch % cfg.knn_every == 0 or epoch == cfg.epochs)):
        was = method.training
        record["knn_acc"] = knn_monitor(method, *eval_data, cfg)
        record.update(method.monitor(eval_data, cfg))
        method.train(was)
    warning = method.collapse_advice(record)
    if warning:
        record["collapse"] = True
        warnings.warn(warning, RuntimeWarning, stacklevel=3)
    for cb in loop.callbacks:
        cb.on_epoch_end(loop, record)
    check_finite_state(method, epoch)
    history.append(record)
    sync_buffers(method)
    rngs = dist.all_gather_object(rng_state(loop.device))  # every process's own random state ...
    own = dist.all_gather_object(own_buffers(method))  # ... and its own share of the method state
    if run is not None:
        improved = "knn_acc" in record and (best is None or record["knn_acc"] > best)
        best = record["knn_acc"] if improved else best
        state = {"model": method.state_dict(), "optimizer": loop.opt.state_dict(),
                 "scaler": loop.scaler.state_dict() if loop.scaler is not None else None,
                 "epoch": epoch, "step": loop.ctx.step, "config": cfg.to_dict(), "rng": rngs,
                 "best_knn": best, "num_samples": method.num_samples, "world_size": dist.world_size(),
                 "history": history, "per_process": own, "data": loop.data_id, "model_info": model_info(method, cfg),
                 "sampler": {"epochs_done": epoch, "next_step": 0, "steps_per_epoch": loop.steps_per_epoch,
                             "global_batch": loop.global_batch},
                 "sslkit_checkpoint": CHECKPOINT_FORMAT}
        run.save_checkpoint(state)
        if improved:
            run.save_checkpoint(state, "best")
        run.log(record)
    return best


CHECKPOINT_FORMAT = 3  # 3: model_info and the sampler's position; 2: the training data's record (data)


def model_info(method: Method, cfg: TrainConfig) -> dict:
    """What using a trained network needs beside its weights (``sslkit.load_run``, ``sslkit.predict``):
    the method, the image side it was trained at, the input normalisation, the feature size and K."""
    norm = method.backbone.stem[0] if hasattr(method.backbone, "stem") else None
    return {"method": method.name, "image_size": cfg.image_size, "backbone": cfg.backbone,
            "mean": norm.mean.flatten().tolist() if norm is not None else None,
            "std": norm.std.flatten().tolist() if norm is not None else None,
            "feature_dim": getattr(method.backbone, "dim", None), "clusters": method.cluster_count(method.params)}


def _epoch_line(record: dict, epochs: int, eta: float) -> str:
    extra = "".join(f" {k}={v:.2f}" for k, v in record.items()
                    if k not in ("epoch", "loss", "lr", "images_per_s", "epoch_time_s") and isinstance(v, float))
    return (f"epoch {record['epoch']}/{epochs} loss={record['loss']:.4f}{extra} "
            f"({record['images_per_s']:.0f} img/s, ETA {eta:.0f}s)")


def fit(method: Method, images: torch.Tensor, cfg: TrainConfig, device: torch.device | None = None,
        labels: torch.Tensor | None = None, eval_data=None, run: RunDir | None = None,
        log=print, true_labels: torch.Tensor | None = None, resume: bool = False,
        progress: bool = False, callbacks=(), data_id: dict | None = None) -> list[dict]:
    """Train ``method`` on ``images`` (uint8, N x 3 x H x W, or an ``sslkit.imagesource.ImageSource``
    that decodes them as the epochs go) for ``cfg.epochs`` epochs.

    labels: only for methods with ``uses_labels`` (the supervised baseline).
    eval_data: ``(train_images, train_labels, test_images, test_labels)`` for the kNN monitor
        every ``cfg.knn_every`` epochs; labels are used for evaluation only.
    true_labels: ground truth of the training images, for evaluation only: each epoch logs
        the NMI, ARI and Hungarian accuracy of the method's pseudo-labels against them.
    run: the run directory; receives config, metrics and, after every epoch, ``last.pt``
        (and ``best.pt`` when the kNN monitor improves).
    resume: continue from ``run``'s ``last.pt`` (model with its buffers — pseudo-labels,
        queue, memory bank —, optimiser, step, random state); the result equals an
        uninterrupted run's. A checkpoint trained on other images is refused.
    progress: a progress bar (tqdm) with the epoch, loss, images/s and ETA on stderr.
    callbacks: ``sslkit.callbacks.Callback`` objects (observe steps, change a loss, stop a run).
    data_id: what identifies the training data in the checkpoint (``fingerprint``, ``num_samples``,
        ``source``); by default a hash of ``images`` and ``labels``.

    The config is validated first (``sslkit.validation.validate``, the command line's checks,
    with this data), so nothing starts with a setting that cannot run.

    Under ``torch.distributed`` (``torchrun``) ``cfg.batch_size`` is the per-process batch:
    every process takes its slice of one global permutation, gradients are averaged by
    DistributedDataParallel, and only the process with a writing ``run`` writes. Every
    process ends every epoch with the same parameters and method state.
    Returns the per-epoch metrics (also appended to ``run``'s metrics.jsonl when given).
    """
    from .data import DataInfo
    from .validation import validate

    classes = int(labels.max()) + 1 if labels is not None and len(labels) else None
    validate(cfg, DataInfo(len(images), classes if method.uses_labels else None, int(images.shape[-1])),
             method=type(method))
    loop = _set_up(method, images, cfg, device or resolve_device(cfg), labels, data_id, callbacks)
    start_epoch, history, best = _start_or_resume(loop, run, resume, log)
    loop.first_epoch = start_epoch
    bar = None
    if progress and start_epoch < cfg.epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=(cfg.epochs - start_epoch) * loop.steps_per_epoch, unit="step", file=sys.stderr,
                   dynamic_ncols=True, leave=True)
    t_start = time.time()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            record = _begin_epoch(loop, epoch, true_labels)
            record.update(_train_epoch(loop, epoch, bar))
            record["epoch_time_s"] = time.time() - t0
            best = _end_epoch(loop, record, history, best, run, eval_data)
            if log is not None:
                eta = (time.time() - t_start) / (epoch + 1 - start_epoch) * (cfg.epochs - epoch - 1)
                line = _epoch_line(record, cfg.epochs, eta)
                bar.write(line) if bar is not None and log is print else log(line)
    finally:
        if bar is not None:
            bar.close()
    return history
