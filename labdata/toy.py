"""Toy data for the optimal-transport and clustering chapters: Gaussian blobs and rings."""

from __future__ import annotations

import math

import torch


def make_blobs(n: int = 600, k: int = 3, dim: int = 2, std: float = 0.5, spread: float = 4.0,
               weights=None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points from ``k`` isotropic Gaussians in ``dim`` dimensions.

    Centres are drawn uniformly in ``[-spread, spread]^dim``; ``weights`` (length ``k``)
    makes the clusters unequal in size (default: equal). Returns float32 points (n, dim)
    and int64 labels (n,), both deterministic in ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(k, dim, generator=g) * 2 - 1) * spread
    w = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    counts = torch.floor(w / w.sum() * n).long()
    counts[: n - int(counts.sum())] += 1
    labels = torch.repeat_interleave(torch.arange(k), counts)
    x = centres[labels] + std * torch.randn(n, dim, generator=g)
    perm = torch.randperm(n, generator=g)
    return x[perm].float(), labels[perm]


def make_rings(n: int = 600, k: int = 2, noise: float = 0.08, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 2-D points on ``k`` concentric rings of radius 1..k with Gaussian noise.

    The classic case where k-means on raw coordinates fails (the clusters are not convex).
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    theta = torch.rand(n, generator=g) * 2 * math.pi
    radius = (labels + 1).float() + noise * torch.randn(n, generator=g)
    x = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], dim=1)
    perm = torch.randperm(n, generator=g)
    return x[perm].float(), labels[perm]
