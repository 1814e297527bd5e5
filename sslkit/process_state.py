"""What each process of a run owns, saves and restores: its random state, its share of the
method state, and the checks that every replica's state is finite and shared.
"""

from __future__ import annotations

import torch

from . import dist
from .device import seed_everything
from .runs import CheckpointError


def rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def restore_own_rng(saved, device: torch.device, seed: int, epoch: int, log) -> None:
    """Restore this process's random state from a checkpoint's per-process list (a dict in
    checkpoints written before that list existed). With another number of processes than
    the run was saved with, each process starts a fresh stream instead (and says so)."""
    states = saved if isinstance(saved, list) else [saved]
    world, rank = dist.world_size(), dist.rank()
    if len(states) == world:
        set_rng_state(states[rank], device)
        return
    seed_everything(seed + rank + 1_000_003 * epoch)
    if log is not None:
        log(f"note: the checkpoint holds the random state of {len(states)} process(es), this run has {world}: "
            "augmentations continue from fresh seeds (the result will not be bitwise equal to an uninterrupted run)")


def own_buffers(method) -> dict:
    """The buffers that are each process's own (``Method.per_process_buffers``), on the CPU."""
    named = dict(method.named_buffers())
    return {k: named[k].detach().cpu() for k in method.per_process_buffers}


def load_own_buffers(method, saved: list | None) -> None:
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


def sync_buffers(method) -> None:
    """Give every process rank 0's normalisation statistics (BN running mean/var), so offline
    steps in eval mode (relabelling, k-means features) see identical networks everywhere,
    and every replica (not only the checkpointed one) ends an epoch with the same state."""
    if not dist.is_distributed():
        return
    for name, buf in method.named_buffers():
        if "running_" in name or name.endswith("num_batches_tracked"):
            dist.broadcast(buf, 0)


def check_finite_state(method, epoch: int) -> None:
    """Raise ``FloatingPointError`` naming the first parameter or floating-point buffer (batch-norm
    statistics, memory bank, queue) that holds NaN or infinity after ``epoch`` (1-based): a run that
    diverged stops before its checkpoint, instead of finishing with chance accuracy."""
    for kind, named in (("parameter", method.named_parameters()), ("buffer", method.named_buffers())):
        for name, t in named:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise FloatingPointError(
                    f"the {kind} {name} holds {bad} non-finite value(s) after epoch {epoch}: the run diverged. "
                    "Lower the learning rate (--lr), add warm-up (--warmup_epochs) or use --precision=fp32; the "
                    "checkpoint of the last finite epoch is kept")
