"""``python -m sslkit.bench train``: images/s of every method's training step (``sslkit.train_step``,
the loop's own), with FLOPs per image and the fraction of the measured matmul rate; each
method's ``bench_references`` (other libraries' implementations) beside it
(see ``python -m sslkit.bench --help``)."""

from __future__ import annotations

import torch

from .timing import PRECISION_DTYPE, images_per_s, machine_name, matmul_rate


def method_for_bench(name: str, backbone: str, batch_size: int, precision: str, device, n: int):
    """A method with its ``lab`` preset's hyper-parameters (shrunk by ``smoke_params`` when they do
    not fit a batch of ``batch_size``), its optimiser and an ``EpochContext`` over ``n`` images."""
    from ..config import ConfigError, TrainConfig, apply_preset
    from ..methods import EpochContext, build_method
    from ..optim import make_optimizer
    from ..registry import get_method
    from ..validation import validate

    cls = get_method(name)
    cfg = TrainConfig(method=name)
    if "lab" in cls.presets:
        apply_preset(cfg, "lab")  # the method's own hyper-parameters (heads, prototypes, m, ...)
    cfg.backbone, cfg.batch_size, cfg.precision, cfg.device = backbone, batch_size, precision, str(device)
    try:
        validate(cfg)
    except ConfigError:
        cfg.params = cls.smoke_params(cfg.params, batch_size)
    cfg.params = cls.resolve_params(cfg.params, _info(n))
    method = build_method(cfg, n).to(device)
    opt = make_optimizer(cfg, [p for p in method.parameters() if p.requires_grad])
    return cfg, method, opt, EpochContext(images=None, epoch=0, device=device, cfg=cfg, num_samples=n, optimizer=opt)


def _info(n):
    from ..data import DataInfo

    return DataInfo(n, 10)


def step_rate(method, opt, ctx, images, labels, batch_size, steps, precision, device, compile_=False):
    """(images/s, FLOPs per image) of ``steps`` training steps on random batches of ``images``."""
    from ..engine import train_step
    from ..precision import set_backbone_precision

    set_backbone_precision(method, precision, device)  # bf16 off CUDA: the backbone, as in training
    method.train()
    ctx.images = images
    method.on_epoch_start(ctx)  # offline work (pseudo-labels, bank), not timed here
    forward = torch.compile(method) if compile_ else method
    n = len(images)

    def step(i):
        idx = torch.randint(0, n, (batch_size,), device=device)
        train_step(method, opt, images[idx], idx, labels[idx] if method.uses_labels else None, precision=precision,
                   device=device, forward=forward, ctx=ctx)

    return images_per_s(step, steps, batch_size, device)


def bench_train(device, methods, backbones, batch_size, steps, precision, compile_):
    from ..device import resolve_precision
    from ..registry import get_method

    n = max(4 * batch_size, 1024)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (n,), device=device)
    here = resolve_precision(precision, device)
    peak_dtype = PRECISION_DTYPE.get(here, torch.float32)
    peak = matmul_rate(device, dtype=peak_dtype)
    print(f"machine: {machine_name(device)}")
    print(f"device={device}  batch={batch_size}  precision={here}{' (auto)' if precision == 'auto' else ''}  "
          f"steps={steps} (after 3 warm-up steps)  measured {str(peak_dtype).replace('torch.', '')} matmul "
          f"{peak:.0f} GFLOP/s")
    print("(GFLOP/img: the step's matrix-product and convolution FLOPs per image, forward and backward, "
          "counted by torch.utils.flop_counter; GFLOP/s: that times images/s; of peak: its fraction "
          "of the measured matmul rate)")
    print(f"{'method':>12s} {'backbone':>9s} {'images/s':>10s} {'vs first':>8s} {'GFLOP/img':>9s} "
          f"{'GFLOP/s':>8s} {'of peak':>7s}")

    def rates(ips, flops):
        if flops != flops:  # not counted
            return f"{'':9s} {'':8s} {'':7s}"
        return f"{flops / 1e9:9.3f} {ips * flops / 1e9:8.0f} {ips * flops / 1e9 / peak:7.0%}"
    for bb in backbones:
        ref = None
        for name in methods:
            cfg, method, opt, ctx = method_for_bench(name, bb, batch_size, here, device, n)
            ips, flops = step_rate(method, opt, ctx, images, labels, batch_size, steps, here, device, compile_)
            ref = ref or ips
            print(f"{name:>12s} {bb:>9s} {ips:10.0f} {ips / ref:8.2f} {rates(ips, flops)}")
            for reference in get_method(name).bench_references().values():
                for what, rips, rflops, note in reference(method, cfg, n, images, device, here, batch_size, steps,
                                                          ips):
                    print(f"{'':>12s} {bb:>9s} {rips:10.0f} {rips / ref:8.2f} {rates(rips, rflops)}   {what}: {note}")
