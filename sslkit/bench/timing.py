"""Timing helpers of the benchmarks, and the machine limits each figure stands beside:
the read rate of memory, the matrix-product rate, and images/s with FLOPs per image of a
training step.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch

PRECISION_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats):
    """(median seconds, last result) of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def best_seconds(fn, device, repeats) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one untimed call: the
    rate at which a machine can run it (for the limits the figures stand beside)."""
    fn()
    return min(timed(fn, device, 1)[0] for _ in range(repeats))


def cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field))
    except (OSError, StopIteration):
        return None


def machine_name(device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name = cpuinfo("model name") or platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}"


def read_bandwidth(device, mib=256, repeats=5) -> float:
    """Measured memory read rate, GB/s, over a ``mib`` MiB float32 array: the best of
    ``repeats`` rounds of the faster of a sum and a dot product (each reads the array once; a
    CPU's sum is sometimes slower than its loads). On a CPU the rate depends on where an
    array of that size lives: small ones stay in the caches and read several times faster."""
    x = torch.ones(max(1, mib * (1 << 20) // 4), device=device)
    best = min(best_seconds(op, device, repeats) for op in (lambda: x.sum(), lambda: torch.dot(x, x)))
    return x.numel() * 4 / best / 1e9


def matmul_rate(device, n=2048, repeats=5, dtype=torch.float32) -> float:
    """Measured matrix-product rate of ``dtype`` (float32 by default), GFLOP/s: best of
    ``repeats`` n x n x n products."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 proper, as k-means uses
    best = best_seconds(lambda: a @ b, device, repeats)
    return 2 * n ** 3 / best / 1e9


def images_per_s(step, steps, batch_size, device, warmup=3) -> tuple[float, float]:
    """(images/s, FLOPs per image) of ``steps`` calls ``step(i)`` after ``warmup`` untimed ones.
    The first warm-up call runs under ``torch.utils.flop_counter.FlopCounterMode``, which counts
    the FLOPs of the matrix products and convolutions of the forward and backward pass (2 per
    multiply-add; elementwise work is not counted), so FLOPs per image times images/s is the
    model FLOP rate that the measured matmul rate bounds."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(0)
    for i in range(1, max(warmup, 1)):
        step(i)
    sync(device)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(device)
    return steps * batch_size / (time.perf_counter() - t), counter.get_total_flops() / batch_size
