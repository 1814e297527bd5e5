"""python -m sslkit.bench transport|kmeans|train|gpu [--device D] [--sizes ...]  (gpu: see sslkit/bench/gpu.py)

Every Sinkhorn and k-means figure is the median of ``--repeats`` runs (3); a training figure
is the rate over ``--steps`` steps after 3 warm-up steps. Each stands beside the machine's
measured limit: the read rate (GB/s of the faster of a sum and a dot product over a float32
array the size of the Sinkhorn kernel, at most 1 GiB) for Sinkhorn, the matrix-product rate
(GFLOP/s of a 2048^3 GEMM; float32, or the training step's precision) for k-means and training.

transport: for each N x K (scores: log-softmax of Gaussian logits), ``sslkit.transport.sinkhorn``
to the marginal error ``--tol`` (L1 over the clusters): total time, iterations, error, and the
time of one iteration measured apart (runs of 20 and 60 iterations, difference / 40), which
reads the N x K kernel twice: its bandwidth and fraction of the read rate measured over an
array of the kernel's size (on a CPU a kernel that fits in the caches reads faster than one
that streams from memory, so each size gets its own limit; the header gives the rate over
1 GiB, beyond the caches); and the time of torch's two bare matrix-vector products over a
matrix of the kernel's size (the reads an iteration cannot avoid) as a fraction of an
iteration's time.
When POT is installed (on a CPU: NumPy float64 arrays, the way its documentation runs it),
``ot.sinkhorn(a, b, M, reg, method=...)`` for ``sinkhorn`` (POT's default) and ``sinkhorn_log``
on the same problem (``M = -scores``, ``reg = 1/lambda``, ``stopThr = tol / sqrt(K)``: POT checks
the L2 error of the cluster marginals every 10 iterations, and L2 below tol / sqrt(K) means L1
below tol), with the L1 error of its plan and the time ratio POT / sslkit.

kmeans: for each N x D x K (Gaussian blobs), each library the way a user runs it, with the
same number of Lloyd iterations (``--iters``, 20) and its own seeding:
``sslkit.kmeans(x, K, iters=20, tol=0)`` (k-means|| on a sample of 32 K rows), ``faiss.Kmeans(D, K, niter=20).train(x)``
then ``index.search(x, 1)`` for the labels (faiss seeds with random points; its default
``max_points_per_centroid=256`` subsamples when N > 256 K), and scikit-learn's
``KMeans(K, n_init=1, max_iter=20, tol=0)`` (greedy k-means++; skipped above N*K = 2e7,
where a run takes minutes here). The libraries take turns within each repeat (sslkit, faiss,
scikit-learn, then again), so that a slow spell on a shared machine does not fall on one. Reported: time, final inertia (sum of squared distances of all N
points to their nearest final centroid, the same formula for all) and its difference to
sslkit's, the time ratio other / sslkit (above 1: sslkit faster), and sslkit's assignment
rate (2 N D K per assignment, iters + 1 assignments) as a fraction of the matmul rate.
``--init same`` instead starts every library from the same random centroids, which
isolates the Lloyd iterations; ``--seeding`` picks sslkit's own seeding (k-means|| by default).
A size whose first round (sslkit and faiss) takes under ``--min-time`` / 3 seconds gets more
rounds, up to ``--min-time`` seconds of them (at most 41): a 0.1 s run swings by 10-20 % on a
shared machine, and a median of three does not settle it. scikit-learn runs in the first
``--repeats`` rounds only.

faiss-cpu's wheels bundle their own OpenBLAS (0.3.15 in faiss-cpu 1.15), which picks its
kernels from the CPU model; on a CPU it does not know (Ice Lake server is one) it falls back
to SSE3 kernels ('Prescott') and faiss runs 3-4x slower. With ``--faiss-blas best`` (the
default) the benchmark asks a fresh process which kernels faiss's OpenBLAS picked and, when
it fell back although the CPU has AVX-512 (or AVX2), sets ``OPENBLAS_CORETYPE=SkylakeX``
(``Haswell``) before it loads faiss, so that faiss is measured at its best; the header says
so. ``--faiss-blas installed`` measures faiss as installed.

train: images/s of one optimiser step (forward, backward, update, the method's own per-step
work such as Sinkhorn codes or the memory-bank update) for each method and backbone, on
synthetic 32x32 uint8 images held on the device, with the chosen precision; the ratio
column compares each method with the supervised step on the same backbone (1.0 = as fast).
Beside it: the step's FLOPs per image (matrix products and convolutions, forward and backward,
counted by ``torch.utils.flop_counter`` over one step), the FLOP rate that makes, and its
fraction of the measured matmul rate in the step's precision (fp32, or bf16 under ``--precision
bf16``): the machine's limit for a step whose time goes to products.
Offline work between epochs (SeLa's relabelling, DeepCluster's k-means) is timed by the
transport and kmeans benchmarks. When lightly is installed, two rows follow sslkit's SwAV:
lightly's SwaV the way its example trains it (``SwaVProjectionHead``, ``SwaVPrototypes``,
``SwaVLoss``, ``prototypes.normalize()`` and one forward per view), on the same backbone,
sizes and optimiser, once with the two views ready on the device (the step's compute alone,
without augmentation, where sslkit's step includes its own) and once fed by a DataLoader
with lightly's ``SwaVTransform`` on PIL images (two 32 px crops at sslkit's crop scale, jitter
and grey probability, no blur; one worker per CPU).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from ..device import pick_device
from ..transport import sinkhorn


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, repeats):
    """(median seconds, last result) of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _best_seconds(fn, device, repeats) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one untimed call: the
    rate at which a machine can run it (for the limits the figures stand beside)."""
    fn()
    return min(_timed(fn, device, 1)[0] for _ in range(repeats))


def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field))
    except (OSError, StopIteration):
        return None


def machine_name(device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name = _cpuinfo("model name") or platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}"


def read_bandwidth(device, mib=256, repeats=5) -> float:
    """Measured memory read rate, GB/s, over a ``mib`` MiB float32 array: the best of
    ``repeats`` rounds of the faster of a sum and a dot product (each reads the array once; a
    CPU's sum is sometimes slower than its loads). On a CPU the rate depends on where an
    array of that size lives: small ones stay in the caches and read several times faster."""
    x = torch.ones(max(1, mib * (1 << 20) // 4), device=device)
    best = min(_best_seconds(op, device, repeats) for op in (lambda: x.sum(), lambda: torch.dot(x, x)))
    return x.numel() * 4 / best / 1e9


def matmul_rate(device, n=2048, repeats=5, dtype=torch.float32) -> float:
    """Measured matrix-product rate of ``dtype`` (float32 by default), GFLOP/s: best of
    ``repeats`` n x n x n products."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 proper, as k-means uses
    best = _best_seconds(lambda: a @ b, device, repeats)
    return 2 * n ** 3 / best / 1e9


def _l1_col_error(plan, k):
    return float((plan.sum(0) - 1.0 / k).abs().sum())


def bench_transport(device, sizes, lam, tol, max_iters, repeats=3):
    try:
        import ot  # POT, optional
    except ImportError:
        ot = None
    bw = read_bandwidth(device, mib=1024)
    print(f"machine: {machine_name(device)}")
    print(f"device={device}  lambda={lam}  tol={tol} (L1 error of the cluster marginals)  "
          f"measured read bandwidth {bw:.1f} GB/s over 1 GiB  (median of {repeats})")
    print("(GB/s: one iteration reads the N x K kernel twice; limit: the measured read rate over an array of the "
          "kernel's size, which on a CPU is faster where it fits in the caches; of lim: the fraction of it; "
          "2 mv ms: torch's two bare products K u and K^T v on an N x K matrix, and that time over an iteration's)")
    print(f"{'N':>9s} {'K':>6s} {'iters':>6s} {'error':>9s} {'sslkit s':>9s} {'ms/iter':>8s} {'GB/s':>6s} "
          f"{'limit':>6s} {'of lim':>6s} {'2 mv ms':>7s} {'of it':>6s} | {'POT method':>13s} {'iters':>5s} "
          f"{'error':>9s} {'POT s':>8s} {'POT/sslkit':>10s}")
    for n, k in sizes:
        g = torch.Generator(device=device).manual_seed(0)  # made on the device (ImageNet-size on a GPU)
        scores = torch.log_softmax(torch.randn(n, k, generator=g, device=device).mul_(2), dim=1)
        sinkhorn(scores[: min(n, 1000)], lam, max_iters=5)  # warm-up
        t_run, res = _timed(lambda: sinkhorn(scores, lam, tol=tol, max_iters=max_iters), device, repeats)
        # one iteration alone: the difference of fixed-length runs
        t20 = _timed(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=20), device, repeats)[0]
        t60 = _timed(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=60), device, repeats)[0]
        per_it = max(t60 - t20, 1e-9) / 40
        gbs = 2 * n * k * 4 / per_it / 1e9  # the kernel is read twice per iteration
        mib = max(1, round(n * k * 4 / (1 << 20)))
        limit = read_bandwidth(device, mib=mib) if mib < 1024 else bw  # 1 GiB is beyond every cache
        # the two bare products of an iteration, K u and K^T v, on a matrix of the kernel's size
        u, v = torch.ones(k, device=device), torch.ones(n, device=device)
        t_mv = _best_seconds(lambda: (scores.mv(u), scores.t().mv(v)), device, max(repeats, 5))
        row = (f"{n:9d} {k:6d} {res.iterations:6d} {res.marginal_error:9.2e} {t_run:9.3f} {per_it * 1e3:8.2f} "
               f"{gbs:6.1f} {limit:6.1f} {gbs / limit:6.0%} {t_mv * 1e3:7.2f} {t_mv / per_it:6.0%}")
        if ot is None or device.type != "cpu" and n * k > 4e8:
            print(row + " | POT not installed" if ot is None else row)
            continue
        for method in ("sinkhorn", "sinkhorn_log"):
            if device.type == "cpu":
                a = torch.full((n,), 1.0 / n, dtype=torch.float64).numpy()
                b = torch.full((k,), 1.0 / k, dtype=torch.float64).numpy()
                cost = (-scores).double().numpy()
            else:  # POT's torch backend, on the device
                a = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
                b = torch.full((k,), 1.0 / k, dtype=torch.float64, device=device)
                cost = (-scores).double()
            reps = repeats
            thr = tol / k ** 0.5  # POT stops on the L2 error: then the L1 error is at most tol
            import warnings
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                plan, log = ot.sinkhorn(a, b, cost, 1.0 / lam, method=method, numItermax=max_iters,
                                        stopThr=thr, log=True)
                first = time.perf_counter() - t0
                if first > 5.0:
                    reps = 1  # slow: one run
                t_pot = first if reps == 1 else _timed(lambda: ot.sinkhorn(a, b, cost, 1.0 / lam, method=method,
                                                                            numItermax=max_iters, stopThr=thr),
                                                       device, reps)[0]
            plan = torch.as_tensor(plan)
            err = _l1_col_error(plan, k) if torch.isfinite(plan).all() else float("nan")
            its = int(log.get("niter", len(log.get("err", [])) * 10))
            print(f"{row} | {method:>13s} {its:5d} {err:9.2e} {t_pot:8.2f} {t_pot / t_run:10.2f}"
                  f"{'  (1 run)' if reps == 1 else ''}")
            row = " " * len(row)


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
    flags = set((_cpuinfo("flags") or "").split()) if flags is None else flags
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
                t, out[name] = _timed(fn, device, 1)
                times[name].append(t)
                if name == "faiss":
                    train_times.append(out[name][0])
            if r == 0:  # short runs: more rounds, up to min_time seconds of them
                first = times["sslkit"][0] + (times["faiss"][0] if "faiss" in times else 0.0)
                if first < min_time / repeats:
                    rounds = max(repeats, min(41, math.ceil(min_time / max(first, 1e-6))))
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


def _images_per_s(step, steps, batch_size, device, warmup=3) -> tuple[float, float]:
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
    _sync(device)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - t), counter.get_total_flops() / batch_size


_PRECISION_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _lightly_swav_rate(cfg, n, images, device, precision_here, batch_size, steps, pipeline):
    """Images/s of lightly's SwaV the way its example (examples/pytorch/swav.py) trains it, on
    sslkit's backbone and with sslkit's SwAV sizes (projection head, prototypes, temperature,
    epsilon, Sinkhorn iterations) and optimiser: ``model.prototypes.normalize()``, one forward
    per view, ``SwaVLoss``, backward, step. ``pipeline=False``: the two views are float tensors
    already on the device, not augmented (the step's compute alone; sslkit's step includes its
    augmentation); ``pipeline=True``: a DataLoader over PIL images with lightly's
    ``SwaVTransform`` (two full-size crops), one worker per CPU, as the example does."""
    import torch.nn as nn
    import torch.nn.functional as F
    from lightly.loss import SwaVLoss
    from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

    from ..augment import to_float
    from ..engine import _autocast, _backbone_precision
    from ..methods import build_method
    from ..optim import make_optimizer

    p = cfg.params
    fresh = build_method(cfg, n)
    _backbone_precision(fresh, precision_here, device)  # bf16 off CUDA: the backbone autocasts, as sslkit's
    backbone = fresh.backbone  # a fresh copy of sslkit's backbone, in the step's precision

    class LightlySwaV(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.projection_head = SwaVProjectionHead(backbone.dim, p.proj_hidden, p.proj_dim)
            self.prototypes = SwaVPrototypes(p.proj_dim, n_prototypes=p.num_prototypes)

        def forward(self, x):
            x = self.projection_head(self.backbone(x).flatten(start_dim=1))
            return self.prototypes(F.normalize(x, dim=1, p=2))

    model = LightlySwaV().to(device).train()
    criterion = SwaVLoss(temperature=p.temperature, sinkhorn_iterations=p.sinkhorn_iters,
                         sinkhorn_epsilon=p.epsilon)
    opt = make_optimizer(cfg, model.parameters())
    if pipeline:
        from PIL import Image
        from lightly.transforms.swav_transform import SwaVTransform

        # sslkit's view recipe: its crop scale, jitter strength and grey probability, no blur
        transform = SwaVTransform(crop_sizes=(32,), crop_counts=(2,), crop_min_scales=(p.global_scale_min,),
                                  crop_max_scales=(1.0,), cj_strength=p.jitter_strength,
                                  random_gray_scale=p.gray_p, gaussian_blur=0.0)
        pil = [Image.fromarray(im.permute(1, 2, 0).cpu().numpy()) for im in images]

        class Images(torch.utils.data.Dataset):
            def __len__(self):
                return len(pil)

            def __getitem__(self, i):
                return transform(pil[i]), 0

        loader = torch.utils.data.DataLoader(Images(), batch_size=batch_size, shuffle=True, drop_last=True,
                                             num_workers=os.cpu_count() or 1, persistent_workers=True)

        def batches():
            while True:
                for views, _ in loader:
                    yield [v.to(device, non_blocking=True) for v in views]
    else:
        def batches():
            while True:
                idx = torch.randint(0, len(images), (batch_size,), device=device)
                x = to_float(images[idx])
                yield [x, x.clone()]
    it = batches()

    def step(_):
        views = next(it)
        model.prototypes.normalize()
        with _autocast(precision_here, device):
            feats = [model(v) for v in views]
            loss = criterion(feats[:2], feats[2:])
        loss.backward()
        opt.step()
        opt.zero_grad()

    return _images_per_s(step, steps, batch_size, device)


def bench_train(device, methods, backbones, batch_size, steps, precision, compile_):
    from ..config import TrainConfig, apply_preset
    from ..device import resolve_precision
    from ..engine import _autocast, _backbone_precision
    from ..methods import METHODS, EpochContext, build_method
    from ..optim import make_optimizer

    lightly_ok = False
    if "swav" in methods:
        try:
            import lightly  # noqa: F401  optional: lightly's SwaV beside sslkit's SwAV
            lightly_ok = True
        except ImportError:
            pass
    n = max(4 * batch_size, 1024)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (n,), device=device)
    precision_here = resolve_precision(precision, device)
    peak_dtype = _PRECISION_DTYPE.get(precision_here, torch.float32)
    peak = matmul_rate(device, dtype=peak_dtype)
    print(f"machine: {machine_name(device)}")
    print(f"device={device}  batch={batch_size}  precision={precision_here}"
          f"{' (auto)' if precision == 'auto' else ''}  steps={steps} (after 3 warm-up steps)  "
          f"measured {str(peak_dtype).replace('torch.', '')} matmul {peak:.0f} GFLOP/s")
    print("(GFLOP/img: the step's matrix-product and convolution FLOPs per image, forward and backward, "
          "counted by torch.utils.flop_counter; GFLOP/s: that times images/s; of peak: its fraction "
          "of the measured matmul rate)")
    print(f"{'method':>12s} {'backbone':>9s} {'images/s':>10s} {'vs supervised':>14s} {'GFLOP/img':>9s} "
          f"{'GFLOP/s':>8s} {'of peak':>7s}")

    def rates(ips, flops):
        return f"{flops / 1e9:9.3f} {ips * flops / 1e9:8.0f} {ips * flops / 1e9 / peak:7.0%}"
    for bb in backbones:
        ref = None
        for name in ["supervised"] + [m for m in methods if m != "supervised"]:
            cfg = TrainConfig(method=name, batch_size=batch_size, precision=precision, device=str(device))
            cfg.params = METHODS[name].Params()
            if "lab" in METHODS[name].presets:
                apply_preset(cfg, "lab")  # the method's own hyper-parameters (heads, prototypes, m, ...)
            cfg.backbone, cfg.batch_size, cfg.precision = bb, batch_size, precision
            if name == "swav":
                cfg.params.num_prototypes = min(cfg.params.num_prototypes, batch_size)
            method = build_method(cfg, n).to(device)
            _backbone_precision(method, precision_here, device)  # bf16 off CUDA: the backbone, as in training
            method.train()
            opt = make_optimizer(cfg, method.parameters())
            step_fn = torch.compile(method) if compile_ else method
            ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)

            def step(i):
                idx = torch.randint(0, n, (batch_size,), device=device)
                with _autocast(precision_here, device):
                    loss, _ = step_fn(images[idx], idx, labels[idx] if method.uses_labels else None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ctx.step = i
                method.on_step_end(ctx)

            method.on_epoch_start(ctx)  # offline work (pseudo-labels, bank), not timed here
            ips, flops = _images_per_s(step, steps, batch_size, device)
            ref = ref or ips
            print(f"{name:>12s} {bb:>9s} {ips:10.0f} {ips / ref:14.2f} {rates(ips, flops)}")
            if name == "swav" and lightly_ok:
                # sslkit's step augments its batch on the device; lightly's "views ready" step does
                # not augment: the augmentation alone is timed, and the step without it derived
                from ..augment import multi_crop

                _sync(device)
                t = time.perf_counter()
                for i in range(steps):
                    multi_crop(images[torch.randint(0, n, (batch_size,), device=device)], n_global=2, **method.crops)
                _sync(device)
                t_aug = (time.perf_counter() - t) / steps
                bare = batch_size / max(batch_size / ips - t_aug, 1e-9)
                print(f"{'':>12s} {'':>9s} {'':>10s} {'':>14s} {'':>26s}   (sslkit's augmentation: {t_aug * 1e3:.0f} ms "
                      f"of the step's {batch_size / ips * 1e3:.0f} ms; without it {bare:.0f} images/s)")
                for pipeline, what in ((False, "views ready"), (True, "its DataLoader")):
                    lips, lflops = _lightly_swav_rate(cfg, n, images, device, precision_here, batch_size, steps,
                                                      pipeline)
                    mine = bare if not pipeline else ips
                    print(f"{'lightly':>12s} {bb:>9s} {lips:10.0f} {lips / ref:14.2f} {rates(lips, lflops)}   SwaV, "
                          f"{what}: sslkit's SwAV step{' without its augmentation' if not pipeline else ''} is "
                          f"{mine / lips:.2f}x as fast")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "gpu":  # the accelerator checks: their own options (sslkit/bench/gpu.py)
        from .gpu import main as gpu_main

        return gpu_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m sslkit.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["transport", "kmeans", "train"])
    parser.add_argument("--methods", nargs="*", default=["sela", "deepcluster", "swav", "npid"])
    parser.add_argument("--backbones", nargs="*", default=["convnet", "resnet18"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="problem sizes: NxK (transport) or NxDxK (kmeans)")
    parser.add_argument("--iters", type=int, default=20, help="k-means iterations")
    parser.add_argument("--lam", type=float, default=25.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iters", type=int, default=1000)
    parser.add_argument("--no-ref", action="store_true", help="skip the reference libraries (faiss, scikit-learn, POT)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--seeding", default=None, choices=["kmeans++", "kmeans||", "random"],
                        help="k-means: sslkit's seeding with --init own (default: sslkit.kmeans's default)")
    parser.add_argument("--min-time", type=float, default=3.0,
                        help="k-means: sizes whose runs are short get more rounds, up to this many seconds")
    parser.add_argument("--faiss-blas", default="best", choices=["best", "installed"],
                        help="k-means: faiss's bundled OpenBLAS at its best kernels for this CPU, or as installed")
    parser.add_argument("--init", default="own", choices=["own", "same"],
                        help="k-means: each library's own seeding (as a user runs it) or the same random centroids")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if args.no_ref:
        sys.modules.update({"ot": None, "faiss": None, "sklearn": None, "sklearn.cluster": None, "lightly": None})
    defaults = {"transport": ["10000x100", "100000x300", "100000x1000"],
                "kmeans": ["10000x256x100", "100000x128x1000", "200000x256x2000"]}
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.sizes or defaults.get(args.what, []))]
    if args.what == "train":
        bench_train(device, args.methods, args.backbones, args.batch_size, args.steps, args.precision, args.compile)
    elif args.what == "transport":
        bench_transport(device, sizes, args.lam, args.tol, args.max_iters, args.repeats)
    else:
        bench_kmeans(device, sizes, args.iters, args.repeats, args.init, args.seeding, args.min_time, args.faiss_blas)


if __name__ == "__main__":
    main()
