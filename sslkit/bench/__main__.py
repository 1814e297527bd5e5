"""python -m sslkit.bench transport|kmeans|train [--device D] [--sizes ...]

transport: for each N x K, the time and final marginal error of ``sslkit.transport.sinkhorn``
on the chosen device and, when POT is installed, the time of ``ot.bregman.sinkhorn_log`` on
the same problem at the same regularisation and the ratio (POT time / ours; above 1: faster).

kmeans: for each N x D x K, the time, iterations and inertia of ``sslkit.cluster.kmeans``
and, when installed, of scikit-learn's ``KMeans`` and faiss's ``Kmeans``, all started from
the same random centroids with the same iteration cap (each may stop earlier once no point
moves), with the time ratios and inertia ratios.

train: images/s of one optimiser step (forward, backward, update, the method's own per-step
work such as Sinkhorn codes or the memory-bank update) for each method and backbone, on
synthetic 32x32 uint8 images held on the device, with the chosen precision; the ratio
column compares each method with the supervised step on the same backbone (1.0 = as fast).
Offline work between epochs (SeLa's relabelling, DeepCluster's k-means) is timed by the
transport and kmeans benchmarks.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..device import pick_device
from ..transport import sinkhorn


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_transport(device, sizes, lam, tol, max_iters, repeats=3):
    try:
        import ot  # POT, optional
    except ImportError:
        ot = None
    print(f"device={device}  lambda={lam}  tol={tol} (L1 error of the cluster marginals)")
    print(f"{'N':>9s} {'K':>6s} {'iters':>6s} {'error':>9s} {'sslkit s':>10s} {'POT s':>9s} {'POT/sslkit':>10s}")
    for n, k in sizes:
        g = torch.Generator().manual_seed(0)
        scores = torch.log_softmax(torch.randn(n, k, generator=g) * 2, dim=1).to(device)
        sinkhorn(scores[: min(n, 1000)], lam, max_iters=5)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            res = sinkhorn(scores, lam, tol=tol, max_iters=max_iters)
            _sync(device)
            best = min(best, time.perf_counter() - t)
        pot_t, ratio = float("nan"), ""
        if ot is not None and n * k <= 5_000_000:
            a = torch.full((n,), 1.0 / n, dtype=torch.float64).numpy()
            b = torch.full((k,), 1.0 / k, dtype=torch.float64).numpy()
            cost = (-scores).double().cpu().numpy()
            t = time.perf_counter()
            ot.bregman.sinkhorn_log(a, b, cost, 1.0 / lam, numItermax=max_iters, stopThr=tol)
            pot_t = time.perf_counter() - t
            ratio = f"{pot_t / best:10.2f}"
        print(f"{n:9d} {k:6d} {res.iterations:6d} {res.marginal_error:9.2e} {best:10.4f} {pot_t:9.4f} {ratio:>10s}")


def bench_kmeans(device, sizes, iters):
    import numpy as np

    from ..cluster import kmeans

    try:
        from sklearn.cluster import KMeans
    except ImportError:
        KMeans = None
    try:
        import faiss
    except ImportError:
        faiss = None
    print(f"device={device}  iterations={iters}  (inertia ratio = other / sslkit; time ratio = other / sslkit)")
    print(f"{'N':>8s} {'D':>4s} {'K':>6s} {'sslkit s':>9s} {'iters':>5s} {'inertia':>11s} {'sklearn s':>10s} "
          f"{'iters':>5s} {'t-ratio':>8s} "
          f"{'i-ratio':>8s} {'faiss s':>8s} {'t-ratio':>8s} {'i-ratio':>8s}")
    for n, d, k in sizes:
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(max(k // 4, 2), d, generator=g) * 3
        x = centres[torch.randint(len(centres), (n,), generator=g)] + torch.randn(n, d, generator=g)
        xd = x.to(device)
        _sync(device)
        t = time.perf_counter()
        # the same random starting centroids for every library, so all follow the same Lloyd iterations
        init = x[torch.randperm(n, generator=g)[:k]].clone()
        res = kmeans(xd, k, iters=iters, tol=0.0, init=init.to(device), seed=0)
        _sync(device)
        ours = time.perf_counter() - t
        row = f"{n:8d} {d:4d} {k:6d} {ours:9.3f} {res.iterations:5d} {res.inertia:11.4g}"
        xn = x.numpy().astype(np.float32)
        if KMeans is not None and n * k <= 2e8:
            t = time.perf_counter()
            km = KMeans(k, init=init.numpy(), n_init=1, max_iter=iters, tol=0.0, random_state=0).fit(xn)
            sk_t = time.perf_counter() - t
            row += f" {sk_t:10.3f} {km.n_iter_:5d} {sk_t / ours:8.2f} {km.inertia_ / res.inertia:8.3f}"
        else:
            row += f" {'-':>10s} {'-':>5s} {'-':>8s} {'-':>8s}"
        if faiss is not None:
            t = time.perf_counter()
            fk = faiss.Kmeans(d, k, niter=iters, seed=0, verbose=False)
            fk.train(xn, init_centroids=init.numpy())
            fa_t = time.perf_counter() - t
            fd, _ = fk.index.search(xn, 1)  # squared distances to the nearest centroid
            row += f" {fa_t:8.3f} {fa_t / ours:8.2f} {float(fd.sum()) / res.inertia:8.3f}"
        print(row)


def bench_train(device, methods, backbones, batch_size, steps, precision, compile_):
    from ..config import PRESETS, TrainConfig, apply_preset
    from ..engine import _autocast, build_method
    from ..optim import make_optimizer
    from ..methods import METHODS, EpochContext

    n = max(4 * batch_size, 1024)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (n,), device=device)
    print(f"device={device}  batch={batch_size}  precision={precision}  steps={steps} (after 3 warm-up steps)")
    print(f"{'method':>12s} {'backbone':>9s} {'images/s':>10s} {'vs supervised':>14s}")
    for bb in backbones:
        ref = None
        for name in ["supervised"] + [m for m in methods if m != "supervised"]:
            cfg = TrainConfig(method=name, batch_size=batch_size, precision=precision, device=str(device))
            cfg.params = METHODS[name].Params()
            if (name, "lab") in PRESETS:
                apply_preset(cfg, "lab")  # the method's own hyper-parameters (heads, prototypes, m, ...)
            cfg.backbone, cfg.batch_size, cfg.precision = bb, batch_size, precision
            if name == "swav":
                cfg.params.num_prototypes = min(cfg.params.num_prototypes, batch_size)
            method = build_method(cfg, n).to(device)
            method.train()
            opt = make_optimizer(cfg, method.parameters())
            step_fn = torch.compile(method) if compile_ else method
            ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)

            def step(i):
                idx = torch.randint(0, n, (batch_size,), device=device)
                with _autocast(cfg, device):
                    loss, _ = step_fn(images[idx], idx, labels[idx] if method.uses_labels else None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ctx.step = i
                method.on_step_end(ctx)

            method.on_epoch_start(ctx)  # offline work (pseudo-labels, bank), not timed here
            for i in range(3):
                step(i)
            _sync(device)
            t = time.perf_counter()
            for i in range(steps):
                step(i)
            _sync(device)
            ips = steps * batch_size / (time.perf_counter() - t)
            ref = ref or ips
            print(f"{name:>12s} {bb:>9s} {ips:10.0f} {ips / ref:14.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sslkit.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["transport", "kmeans", "train"])
    parser.add_argument("--methods", nargs="*", default=["sela", "deepcluster", "swav", "npid"])
    parser.add_argument("--backbones", nargs="*", default=["convnet", "resnet18"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="problem sizes: NxK (transport) or NxDxK (kmeans)")
    parser.add_argument("--iters", type=int, default=25, help="k-means iterations")
    parser.add_argument("--lam", type=float, default=25.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iters", type=int, default=1000)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    defaults = {"transport": ["1000x10", "10000x100", "50000x128", "100000x1000"],
                "kmeans": ["10000x64x100", "50000x128x1000", "100000x256x1000"]}
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.sizes or defaults.get(args.what, []))]
    if args.what == "train":
        bench_train(device, args.methods, args.backbones, args.batch_size, args.steps, args.precision, args.compile)
    elif args.what == "transport":
        bench_transport(device, sizes, args.lam, args.tol, args.max_iters)
    else:
        bench_kmeans(device, sizes, args.iters)


if __name__ == "__main__":
    main()
