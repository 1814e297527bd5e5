"""``python -m sslkit.bench transport``: Sinkhorn against POT and the machine's read rate
(see ``python -m sslkit.bench --help``)."""

from __future__ import annotations

import time

import torch

from ..transport import sinkhorn
from .timing import best_seconds, machine_name, read_bandwidth, timed


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
        t_run, res = timed(lambda: sinkhorn(scores, lam, tol=tol, max_iters=max_iters), device, repeats)
        # one iteration alone: the difference of fixed-length runs
        t20 = timed(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=20), device, repeats)[0]
        t60 = timed(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=60), device, repeats)[0]
        per_it = max(t60 - t20, 1e-9) / 40
        gbs = 2 * n * k * 4 / per_it / 1e9  # the kernel is read twice per iteration
        mib = max(1, round(n * k * 4 / (1 << 20)))
        limit = read_bandwidth(device, mib=mib) if mib < 1024 else bw  # 1 GiB is beyond every cache
        # the two bare products of an iteration, K u and K^T v, on a matrix of the kernel's size
        u, v = torch.ones(k, device=device), torch.ones(n, device=device)
        t_mv = best_seconds(lambda: (scores.mv(u), scores.t().mv(v)), device, max(repeats, 5))
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
                t_pot = first if reps == 1 else timed(lambda: ot.sinkhorn(a, b, cost, 1.0 / lam, method=method,
                                                                            numItermax=max_iters, stopThr=thr),
                                                       device, reps)[0]
            plan = torch.as_tensor(plan)
            err = _l1_col_error(plan, k) if torch.isfinite(plan).all() else float("nan")
            its = int(log.get("niter", len(log.get("err", [])) * 10))
            print(f"{row} | {method:>13s} {its:5d} {err:9.2e} {t_pot:8.2f} {t_pot / t_run:10.2f}"
                  f"{'  (1 run)' if reps == 1 else ''}")
            row = " " * len(row)
