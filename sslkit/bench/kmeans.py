"""``python -m sslkit.bench kmeans``: k-means against faiss and scikit-learn and the machine's
matrix-product rate (see ``python -m sslkit.bench --help``)."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time

import torch

from .timing import cpuinfo, machine_name, matmul_rate, timed


# OpenBLAS's generic x86-64 targets: what it falls back to on a CPU model it does not know
_GENERIC_BLAS = {"prescott", "core2", "katmai", "coppermine", "northwood", "banias", "atom", "generic"}
_FAISS_BLAS_PROBE = (
    "import faiss, threadpoolctl\n"
    "print(next((i.get('architecture') or '' for i in threadpoolctl.threadpool_info()\n"
    "            if i.get('internal_api') == 'openblas' and 'faiss' in i.get('filepath', '')), ''))")


def faiss_blas_kernels() -> str:
    """The kernels faiss's bundled OpenBLAS picked, read in a fresh process ('' if unknown)."""
    try:
        out = subprocess.run([sys.executable, "-c", _FAISS_BLAS_PROBE], capture_output=True, text=True,
                             timeout=300)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def faiss_at_its_best(flags=None, probe=faiss_blas_kernels) -> str | None:
    """Before faiss is loaded: when its OpenBLAS would fall back to generic kernels on a CPU
    with AVX-512 (AVX2), set OPENBLAS_CORETYPE=SkylakeX (Haswell); returns a line saying what
    it did, or None when faiss is left as installed."""
    if "OPENBLAS_CORETYPE" in os.environ or "faiss" in sys.modules:
        return None
    flags = set((cpuinfo("flags") or "").split()) if flags is None else flags
    want = "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None
    if want is None:
        return None
    picked = probe()
    if picked.lower() not in _GENERIC_BLAS:
        return None
    os.environ["OPENBLAS_CORETYPE"] = want
    return (f"faiss: its bundled OpenBLAS picks '{picked}' kernels (no AVX) on this CPU, which it does not "
            f"recognise; this run sets OPENBLAS_CORETYPE={want} so that faiss runs at its best "
            f"(--faiss-blas installed: as installed)")


MAX_ROUNDS = 41


def rounds_for(first: float, repeats: int, min_time: float) -> int:
    """Rounds of a size whose first round took ``first`` seconds: ``repeats``, or for short runs
    more, up to ``min_time`` seconds of them (at most ``MAX_ROUNDS``): a 0.1 s run swings by
    10-20 % on a shared machine, and a median of three does not settle it."""
    if first >= min_time / repeats:
        return repeats
    return max(repeats, min(MAX_ROUNDS, math.ceil(min_time / max(first, 1e-6))))


def _blobs(n, d, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(max(k // 4, 2), d, generator=g) * 3
    return centres[torch.randint(len(centres), (n,), generator=g)] + torch.randn(n, d, generator=g), g


def bench_kmeans(device, sizes, iters, repeats=3, init="own", seeding=None, min_time=3.0, faiss_blas="best"):
    import numpy as np

    from ..cluster import assign, kmeans

    try:
        from sklearn.cluster import KMeans
    except ImportError:
        KMeans = None
    blas_note = faiss_at_its_best() if faiss_blas == "best" and device.type == "cpu" else None
    try:
        import faiss
    except ImportError:
        faiss = None
    if device.type != "cpu":  # the CPU references would take hours at GPU sizes
        faiss = faiss if faiss is not None and hasattr(faiss, "StandardGpuResources") else None
        KMeans = None
    flops = matmul_rate(device)
    print(f"machine: {machine_name(device)}")
    print(f"device={device}  iterations={iters}  init={'each library its own' if init == 'own' else 'the same random centroids'}"
          f"  measured fp32 matmul {flops:.0f} GFLOP/s  (median of `runs` rounds; ratio = other time / sslkit time; "
          f"dI = other inertia / sslkit inertia - 1)")
    if blas_note:
        print(blas_note)
    print(f"{'N':>8s} {'D':>4s} {'K':>6s} {'runs':>4s} {'sslkit s':>9s} {'GFLOP/s':>8s} {'of peak':>7s} {'inertia':>11s} | "
          f"{'faiss s':>8s} {'(train)':>8s} {'dI':>8s} {'ratio':>6s} | {'sklearn s':>9s} {'dI':>8s} {'ratio':>6s}")
    for n, d, k in sizes:
        x, g = _blobs(n, d, k)
        start = x[torch.randperm(n, generator=g)[:k]].clone()
        xd = x.to(device)
        kw = {"init": start.to(device)} if init == "same" else ({"init": seeding} if seeding else {})
        kmeans(xd[: min(n, 20 * k)], k, iters=2, **kw)  # warm-up
        xn = x.numpy().astype(np.float32)
        runs = {"sslkit": lambda: kmeans(xd, k, iters=iters, tol=0.0, **kw)}
        if faiss is not None:
            def run_faiss():
                t0 = time.perf_counter()
                gpu = {"gpu": True} if device.type == "cuda" else {}
                fk = faiss.Kmeans(d, k, niter=iters, **gpu) if init == "own" else faiss.Kmeans(d, k, niter=iters, seed=0, **gpu)
                fk.train(xn, init_centroids=None if init == "own" else start.numpy())
                t_train = time.perf_counter() - t0
                dist2, _ = fk.index.search(xn, 1)  # the labels a user needs, and the inertia
                return t_train, fk, float(dist2.astype(np.float64).sum())
            runs["faiss"] = run_faiss
        if KMeans is not None and n * k <= 2e7:
            kinit = "k-means++" if init == "own" else start.numpy()
            runs["sklearn"] = lambda: KMeans(k, init=kinit, n_init=1, max_iter=iters, tol=0.0, random_state=0).fit(xn)
        # the libraries take turns within each repeat, so that a slow spell of a shared machine
        # falls on all of them rather than on one
        times, out, train_times = {name: [] for name in runs}, {}, []
        rounds, r = repeats, 0
        while r < rounds:
            for name, fn in runs.items():
                if name == "sklearn" and r >= repeats:
                    continue
                t, out[name] = timed(fn, device, 1)
                times[name].append(t)
                if name == "faiss":
                    train_times.append(out[name][0])
            if r == 0:
                rounds = rounds_for(times["sslkit"][0] + (times["faiss"][0] if "faiss" in times else 0.0),
                                    repeats, min_time)
            r += 1
        t_ours, res = statistics.median(times["sslkit"]), out["sslkit"]
        rate = 2 * n * d * k * (res.iterations + 1) / t_ours / 1e9
        row = f"{n:8d} {d:4d} {k:6d} {rounds:4d} {t_ours:9.3f} {rate:8.0f} {rate / flops:7.0%} {res.inertia:11.5g} |"
        if "faiss" in runs:
            t_fa, (_, fk, fi) = statistics.median(times["faiss"]), out["faiss"]
            t_train = statistics.median(train_times)
            row += f" {t_fa:8.3f} {t_train:8.3f} {fi / res.inertia - 1:+8.2%} {t_fa / t_ours:6.2f} |"
        else:
            row += f" {'(faiss not installed)':>33s} |"
        if "sklearn" in runs:
            t_sk, km = statistics.median(times["sklearn"]), out["sklearn"]
            si = float(assign(x, torch.from_numpy(km.cluster_centers_).float())[1].double().sum())
            row += f" {t_sk:9.3f} {si / res.inertia - 1:+8.2%} {t_sk / t_ours:6.2f}"
        else:
            row += f" {'-':>9s} {'-':>8s} {'-':>6s}"
        print(row)
