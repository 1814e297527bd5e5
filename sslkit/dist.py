"""Reductions that span processes under ``torch.distributed`` and do nothing without it.

Every core algorithm (Sinkhorn, k-means, the memory bank) reduces through these helpers,
so the same function runs on one CPU process and, unchanged, across many GPUs.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def planned_world_size() -> int:
    """The processes of this run: the process group's size, or, before it is joined (while
    a command line is validated under torchrun), the WORLD_SIZE that torchrun set."""
    import os

    return world_size() if is_distributed() else max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over all processes (in place and returned); ``t`` itself alone."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from every process along dim 0 (equal sizes); ``t`` alone otherwise."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def all_gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from every process along dim 0, in rank order, whatever each one's
    number of rows (padded for the all-gather, then trimmed); ``t`` alone otherwise."""
    if not is_distributed():
        return t
    sizes = all_gather_cat(torch.tensor([len(t)], device=t.device)).tolist()
    padded = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[:len(t)] = t
    parts = all_gather_cat(padded).split(max(sizes))
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    if is_distributed():
        dist.broadcast(t, src)
    return t


def shard_range(n: int) -> tuple[int, int]:
    """This process's contiguous share ``[start, end)`` of ``n`` rows (all of them alone)."""
    w, r = world_size(), rank()
    per = -(-n // w)
    return min(n, r * per), min(n, (r + 1) * per)


def gather_shards(t: torch.Tensor, n: int) -> torch.Tensor:
    """Reassemble the full ``n`` rows from every process's ``shard_range`` rows (padded to equal
    sizes for the all-gather, then trimmed); ``t`` itself alone."""
    if not is_distributed():
        return t
    per = -(-n // world_size())
    padded = torch.zeros((per, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[:len(t)] = t
    return all_gather_cat(padded)[:n]


def broadcast_module(module: torch.nn.Module, src: int = 0, buffers: bool = False) -> None:
    """Give every process ``src``'s parameters (and, with ``buffers``, its floating-point
    buffers): after a method re-initialises a layer on each process with its own random
    state (DeepCluster's classifier), the replicas are identical again."""
    if not is_distributed():
        return
    with torch.no_grad():
        for p in module.parameters():
            dist.broadcast(p.data, src)
        if buffers:
            for b in module.buffers():
                dist.broadcast(b, src)


def all_gather_object(obj) -> list:
    """``obj`` from every process, in rank order (``[obj]`` alone)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
