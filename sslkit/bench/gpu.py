"""python -m sslkit.bench gpu [--device cuda] [--quick] [--json FILE] [--preset-epochs E]

The checks that need an accelerator, in one command, printed with the device's name:

1. Sinkhorn on SeLa's ImageNet problem: N = 1,281,167 images, K = 3000 clusters, lambda 25,
   to a marginal error of 0.1 (SeLa's sinkhornknopp.py stops when the L1 change of the
   image-side scaling falls below 0.1, checked every 10 iterations; here the library's own
   L1 marginal criterion at the same tolerance): time, iterations, error, and the bandwidth
   one iteration reaches (it reads the N x K kernel twice) against the measured read rate.
2. k-means of 1,000,000 x 256 points into 20,000 clusters, 20 Lloyd iterations: time,
   inertia, and the rate of the assignment GEMMs against the measured fp32 matmul rate.
3. Training throughput of every method on CIFAR-sized images with its ``cifar10`` preset
   (ResNet-18 / AlexNet) at bf16: images/s, FLOPs per image (counted by
   ``torch.utils.flop_counter`` over one forward and backward step) and the model FLOP
   utilisation against the measured bf16 matmul rate (MFU).
4. The ``cifar10`` preset of each method for ``--preset-epochs`` epochs through
   ``python -m sslkit.train``'s own code (needs CIFAR-10: the official files or
   ``LABDATA_CIFAR10``): kNN, linear probe, wall clock, images/s.

``--quick`` shrinks every size (Sinkhorn 20,000 x 300, k-means 20,000 x 64 into 100, the lab
ConvNet, a handful of steps, the ``lab`` preset on ``--quick-subset`` images per class for one
epoch), so the same code runs on a CPU in about a minute; a test runs it that way. Without a
GPU the full sizes still run, slowly: the command says where it ran.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

FULL = dict(sinkhorn=(1_281_167, 3000), kmeans=(1_000_000, 256, 20_000), backbone_steps=20, batch=256)
QUICK = dict(sinkhorn=(20_000, 300), kmeans=(20_000, 64, 100), backbone_steps=2, batch=32)


from .timing import images_per_s, machine_name, matmul_rate, read_bandwidth, timed


def _seconds(fn, device):
    """(seconds, result) of one call, the device synchronised around it."""
    return timed(fn, device, 1)


def _matmul_rate(device, dtype) -> float:
    return matmul_rate(device, n=4096 if device.type == "cuda" else 1024, dtype=dtype)


def check_sinkhorn(device, n, k, lam=25.0, tol=0.1) -> dict:
    from ..transport import sinkhorn

    g = torch.Generator(device=device).manual_seed(0)
    scores = torch.log_softmax(torch.randn(n, k, generator=g, device=device).mul_(2), dim=1)
    sinkhorn(scores[: min(n, 1000)], lam, max_iters=5)  # warm-up
    t, res = _seconds(lambda: sinkhorn(scores, lam, tol=tol, max_iters=1000), device)
    t20 = _seconds(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=20), device)[0]
    t40 = _seconds(lambda: sinkhorn(scores, lam, tol=0.0, max_iters=40), device)[0]
    per_it = max(t40 - t20, 1e-9) / 20
    bw = read_bandwidth(device)
    gbs = 2 * n * k * 4 / per_it / 1e9
    return {"N": n, "K": k, "lambda": lam, "tol": tol, "seconds": t, "iterations": res.iterations,
            "marginal_error": res.marginal_error, "ms_per_iteration": per_it * 1e3, "GB_per_s": gbs,
            "read_bandwidth_GB_per_s": bw, "fraction_of_bandwidth": gbs / bw}


def check_kmeans(device, n, d, k, iters=20) -> dict:
    from ..cluster import kmeans

    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, generator=g, device=device)
    kmeans(x[: min(n, 20 * k)], k, iters=2)  # warm-up
    t, res = _seconds(lambda: kmeans(x, k, iters=iters, tol=0.0), device)
    peak = _matmul_rate(device, torch.float32)
    rate = 2 * n * d * k * (res.iterations + 1) / t / 1e9
    return {"N": n, "D": d, "K": k, "iterations": res.iterations, "seconds": t, "inertia": res.inertia,
            "assignment_GFLOP_per_s": rate, "fp32_matmul_GFLOP_per_s": peak, "fraction_of_matmul": rate / peak}


def _method_for(name, preset, device, n, quick):
    """The method with its ``preset`` (the lab preset shrunk by ``smoke_params`` with ``quick``),
    its optimiser and a context over ``n`` random images, after its offline work."""
    from .. import TrainConfig, apply_preset, build_method
    from ..data import DataInfo
    from ..methods import EpochContext
    from ..optim import make_optimizer
    from ..registry import get_method

    cls = get_method(name)
    cfg = apply_preset(TrainConfig(method=name, device=str(device)), preset)
    cfg.precision = "bf16" if device.type == "cuda" or not quick else "fp32"
    if quick:
        cfg.batch_size = QUICK["batch"]
        cfg.params = cls.smoke_params(cfg.params, cfg.batch_size)
    method = build_method(cfg, DataInfo(n, 10)).to(device)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    opt = make_optimizer(cfg, [q for q in method.parameters() if q.requires_grad])
    ctx = EpochContext(images=images, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)
    method.on_epoch_start(ctx)  # offline work (labels, bank) before the timed steps
    return cfg, method, images, ctx, opt


def check_training(device, methods, quick) -> list[dict]:
    from ..engine import train_step
    from ..precision import set_backbone_precision

    steps = (QUICK if quick else FULL)["backbone_steps"]
    peak_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = _matmul_rate(device, peak_dtype)
    rows = []
    for name in methods:
        preset = "lab" if quick else "cifar10"
        n = 4 * (QUICK if quick else FULL)["batch"]
        cfg, method, images, ctx, opt = _method_for(name, preset, device, n, quick)
        set_backbone_precision(method, cfg.precision, device)
        labels = torch.randint(0, 10, (n,), device=device)
        b = cfg.batch_size

        def step(i):
            idx = torch.arange(i * b, (i + 1) * b, device=device) % n
            train_step(method, opt, images[idx], idx, labels[idx] if method.uses_labels else None,
                       precision=cfg.precision, device=device, ctx=ctx)

        ips, flops_per_image = images_per_s(step, steps, b, device)
        rows.append({"method": name, "preset": preset, "backbone": cfg.backbone, "batch": b,
                     "precision": cfg.precision, "images_per_s": ips, "GFLOP_per_image": flops_per_image / 1e9,
                     "achieved_TFLOP_per_s": ips * flops_per_image / 1e12,
                     "MFU": ips * flops_per_image / (peak * 1e9), "peak_matmul_GFLOP_per_s": peak,
                     "peak_dtype": str(peak_dtype).replace("torch.", "")})
    return rows


def _smoke_options(name, preset, batch_size) -> list[str]:
    """``--params.KEY=VALUE`` for every parameter ``smoke_params`` changes in the preset."""
    from .. import TrainConfig, apply_preset
    from ..registry import get_method

    cfg = apply_preset(TrainConfig(method=name), preset)
    small = get_method(name).smoke_params(cfg.params, batch_size)
    return [f"--params.{k}={v}" for k, v in vars(small).items() if getattr(cfg.params, k) != v]


def check_presets(device, methods, epochs, quick, subset) -> list[dict]:
    from ..train import main as train_main

    rows = []
    for name in methods:
        preset = "lab" if quick else "cifar10"
        with tempfile.TemporaryDirectory() as tmp:
            args = [f"--method={name}", f"--preset={preset}", f"--epochs={epochs}", f"--device={device}",
                    f"--output_dir={tmp}/run", "--knn_every=0"]
            if quick:  # a tiny subset: each method's sizes shrunk to fit a batch of 16 (its smoke_params)
                args += [f"--subset={subset}", "--batch_size=16", "--precision=fp32"]
                args += _smoke_options(name, preset, 16)
            t0 = time.time()
            rc = train_main(args)
            wall = time.time() - t0
            run = Path(tmp) / "run"
            if rc != 0 or not (run / "results.json").exists():
                rows.append({"method": name, "preset": preset, "error": f"sslkit.train exited with {rc}"})
                continue
            res = json.loads((run / "results.json").read_text())
            ips = [json.loads(line)["images_per_s"] for line in (run / "metrics.jsonl").read_text().splitlines()]
            rows.append({"method": name, "preset": preset, "epochs": epochs, "knn_acc": res["knn_acc"],
                         "linear_acc": res["linear_acc"], "wall_s": wall, "images_per_s": statistics.median(ips)})
    return rows


def main(argv=None) -> int:
    from ..device import pick_device
    from ..registry import method_names

    ap = argparse.ArgumentParser(prog="python -m sslkit.bench gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cuda, cuda:N, cpu (default: the best available)")
    ap.add_argument("--quick", action="store_true", help="small sizes: the same code in about a minute on a CPU")
    ap.add_argument("--quick-subset", type=int, default=20, help="--quick: images per class for the preset runs")
    ap.add_argument("--methods", nargs="+", default=method_names(), choices=method_names())
    ap.add_argument("--preset-epochs", type=int, default=3, help="epochs of each method's cifar10 preset")
    ap.add_argument("--skip", nargs="*", default=[], choices=["sinkhorn", "kmeans", "training", "presets"])
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    sizes = QUICK if args.quick else FULL
    report = {"device": machine_name(device), "torch": torch.__version__, "quick": args.quick}
    print(f"sslkit GPU checks on {report['device']}, torch {torch.__version__}" + (" (--quick sizes)" if args.quick
                                                                                   else ""))
    if device.type != "cuda":
        print("note: no CUDA device: these are CPU figures, not the GPU targets")
    if "sinkhorn" not in args.skip:
        s = report["sinkhorn"] = check_sinkhorn(device, *sizes["sinkhorn"])
        print(f"Sinkhorn {s['N']} x {s['K']}, lambda {s['lambda']}, to error {s['tol']}: {s['seconds']:.2f} s, "
              f"{s['iterations']} iterations (error {s['marginal_error']:.2e}), {s['ms_per_iteration']:.2f} ms/iteration "
              f"= {s['GB_per_s']:.0f} GB/s, {s['fraction_of_bandwidth']:.0%} of the measured "
              f"{s['read_bandwidth_GB_per_s']:.0f} GB/s")
    if "kmeans" not in args.skip:
        k = report["kmeans"] = check_kmeans(device, *sizes["kmeans"])
        print(f"k-means {k['N']} x {k['D']} into {k['K']}, {k['iterations']} iterations: {k['seconds']:.2f} s, "
              f"inertia {k['inertia']:.4g}, assignment {k['assignment_GFLOP_per_s']:.0f} GFLOP/s = "
              f"{k['fraction_of_matmul']:.0%} of the measured fp32 matmul {k['fp32_matmul_GFLOP_per_s']:.0f} GFLOP/s")
    if "training" not in args.skip:
        rows = report["training"] = check_training(device, args.methods, args.quick)
        print(f"{'method':>12s} {'backbone':>9s} {'precision':>9s} {'images/s':>9s} {'GFLOP/img':>9s} {'MFU':>6s}")
        for r in rows:
            print(f"{r['method']:>12s} {r['backbone']:>9s} {r['precision']:>9s} {r['images_per_s']:9.0f} "
                  f"{r['GFLOP_per_image']:9.3f} {r['MFU']:6.1%}")
        print(f"(MFU: model FLOPs per second over the measured {rows[0]['peak_dtype']} matmul rate "
              f"{rows[0]['peak_matmul_GFLOP_per_s']:.0f} GFLOP/s)")
    if "presets" not in args.skip:
        rows = report["presets"] = check_presets(device, args.methods, 1 if args.quick else args.preset_epochs,
                                                 args.quick, args.quick_subset)
        for r in rows:
            if "error" in r:
                print(f"{r['method']:>12s} preset {r['preset']}: {r['error']}")
            else:
                print(f"{r['method']:>12s} preset {r['preset']}, {r['epochs']} epoch(s): kNN {r['knn_acc']:.1f}%, "
                      f"linear {r['linear_acc']:.1f}%, {r['wall_s']:.0f} s, {r['images_per_s']:.0f} img/s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
