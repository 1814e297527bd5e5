"""python -m sslkit.bench transport [--device D] [--sizes NxK ...] [--lam L] [--tol T]

Prints, for each problem size, the time and final marginal error of ``sslkit.transport.sinkhorn``
on the chosen device and, when POT is installed, the time of ``ot.bregman.sinkhorn_log`` on the
same problem at the same regularisation and the ratio (POT time / ours; above 1 means faster).
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sslkit.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["transport"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", nargs="*", default=["1000x10", "10000x100", "50000x128", "100000x1000"],
                        help="problem sizes NxK")
    parser.add_argument("--lam", type=float, default=25.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iters", type=int, default=1000)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    if args.what == "transport":
        bench_transport(device, sizes, args.lam, args.tol, args.max_iters)


if __name__ == "__main__":
    main()
