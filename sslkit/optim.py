"""Optimisers and the learning-rate schedule every run uses.

``make_optimizer`` builds SGD, AdamW or LARS from a ``TrainConfig``; ``lr_at`` gives the
learning rate at a step (linear warm-up, then cosine, constant or step decay), which the
training loop writes into every parameter group before each step.

LARS (You et al., 2017, "Large Batch Training of Convolutional Networks") gives each
weight tensor its own step size, proportional to ``||w|| / ||g + wd w||``, so that no
layer moves by more than a fraction ``eta`` of its norm in one step. The variant here is
the one the CIFAR recipes of solo-learn use for SwAV (Costa et al., JMLR 2022):

    trust = eta * ||w|| / (||g|| + wd * ||w|| + eps)
    if clip: trust = min(trust / lr, 1)          # never a larger step than plain SGD
    d     = trust * (g + wd * w)                  # weights with ndim > 1 only
    d     = g                                     # biases and norm scales (ndim == 1): no decay, no trust
    v     = momentum * v + d;   w -= lr * v

With ``clip`` the trust ratio caps the *effective* learning rate at ``eta ||w|| / ||g||``,
which is what lets a recipe use lr 0.6 at batch 256 without the first steps blowing up.
"""

from __future__ import annotations

import math

import torch

import typing

from .config import Optimizer, Schedule, TrainConfig

OPTIMIZERS = typing.get_args(Optimizer)
SCHEDULES = typing.get_args(Schedule)  # what lr_at knows after the warm-up


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios (see the module docstring for the rule).

    ``exclude_1d`` leaves one-dimensional tensors (biases, BatchNorm scales and shifts)
    out of both the trust ratio and the weight decay, as solo-learn's ``exclude_bias_n_norm``.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02, clip: bool = True, eps: float = 1e-8, exclude_1d: bool = True):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS: lr, momentum and weight_decay must be >= 0 and eta > 0 "
                             f"(got lr={lr}, momentum={momentum}, weight_decay={weight_decay}, eta={eta})")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, clip=clip, eps=eps,
                        exclude_1d=exclude_1d)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, mom = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1 or not group["exclude_1d"]:
                    w_norm, g_norm = p.norm(), d.norm()
                    trust = group["eta"] * w_norm / (g_norm + wd * w_norm + group["eps"])
                    if group["clip"] and lr > 0:
                        trust = torch.clamp(trust / lr, max=1.0)
                    # a zero weight or zero gradient has no scale to trust: plain SGD for that tensor
                    trust = torch.where((w_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust))
                    d = d.add(p, alpha=wd).mul_(trust)
                if mom:
                    buf = self.state[p].get("momentum_buffer")
                    if buf is None:
                        buf = self.state[p]["momentum_buffer"] = d.clone()
                    else:
                        buf.mul_(mom).add_(d)
                    d = buf
                p.add_(d, alpha=-lr)
        return loss


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names; its learning rate is set by ``lr_at`` before every step."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "lars":
        return LARS(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                    eta=cfg.lars_eta, clip=cfg.lars_clip)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")


def base_lr(cfg: TrainConfig, world_size: int = 1) -> float:
    """The peak learning rate of a run: ``cfg.lr`` is stated at a global batch of
    ``cfg.lr_batch_size`` (a recipe's own batch size) and scaled linearly to the run's global
    batch, ``cfg.batch_size`` (per process) x ``world_size`` processes."""
    return cfg.lr * cfg.batch_size * world_size / cfg.lr_batch_size


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int, world_size: int = 1) -> float:
    """Learning rate at ``step``: linear warm-up, then cosine (from the peak to ``final_lr_ratio``
    of it), constant or step decay (the
    rate times ``lr_gamma`` at each epoch of ``lr_milestones``; without milestones at 1/3 and
    2/3 of the run)."""
    base = base_lr(cfg, world_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = cfg.warmup_epochs * steps_per_epoch
    if step < warm:
        return base * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    if cfg.schedule == "cosine":
        final = base * cfg.final_lr_ratio
        return final + (base - final) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        if cfg.lr_milestones:
            epoch = step // max(1, steps_per_epoch)
            return base * cfg.lr_gamma ** sum(epoch >= m for m in cfg.lr_milestones)
        return base * (cfg.lr_gamma ** int(progress * 3))
    return base
