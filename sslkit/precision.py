"""The training step's numeric precision, the same in the loop and the benchmarks.

On CUDA the whole step runs under autocast (bf16 or fp16, fp16 with loss scaling). Off CUDA,
bf16 is the backbone's own CPU autocast while training: its convolutions run in bf16 (CPUs
with bf16 dot products do them about twice as fast) and its output, the heads, Sinkhorn,
k-means, the losses and every evaluation stay in fp32.
"""

from __future__ import annotations

import contextlib

import torch


def autocast(precision: str, device: torch.device):
    """The context a training step runs in. ``precision``: the resolved one
    (``sslkit.device.resolve_precision``: never ``auto``)."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def set_backbone_precision(model: torch.nn.Module, precision: str, device: torch.device) -> None:
    """bf16 off CUDA: ``model``'s backbone (or ``model`` itself, a backbone) runs its convolutions
    under CPU autocast while training; elsewhere (and in fp32) it runs as it is."""
    backbone = getattr(model, "backbone", model)
    if hasattr(backbone, "autocast_dtype"):
        backbone.autocast_dtype = torch.bfloat16 if precision == "bf16" and device.type != "cuda" else None


def grad_scaler(precision: str, device: torch.device):
    """fp16 on CUDA scales the loss (a ``torch.amp.GradScaler``); None otherwise."""
    return torch.amp.GradScaler("cuda") if precision == "fp16" and device.type == "cuda" else None
