"""Independent references the tests compare the library with: the published loops transcribed,
textbook algorithms in float64 NumPy, and exact solutions by scipy."""

from __future__ import annotations

import numpy as np
import torch


def official_swav_loop(out: torch.Tensor, eps: float, iters: int) -> torch.Tensor:
    """SwAV's published procedure (facebookresearch/swav ``distributed_sinkhorn``), transcribed:
    K x B matrix, prototypes then samples; float64."""
    Q = torch.exp(out.double() / eps).t()
    B, K = Q.shape[1], Q.shape[0]
    Q /= Q.sum()
    for _ in range(iters):
        Q /= Q.sum(dim=1, keepdim=True)
        Q /= K
        Q /= Q.sum(dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def textbook_sinkhorn(P, lam, r, c, iters=5000):
    """diag(a) P^lam diag(b) by alternating scaling, float64 NumPy (columns, then rows)."""
    K = np.asarray(P, dtype=np.float64) ** lam
    a, b = np.ones(K.shape[0]), np.ones(K.shape[1])
    for _ in range(iters):
        b = c / (K.T @ a)
        a = r / (K @ b)
    return a[:, None] * K * b[None, :]


def equipartition_optimum(cost: np.ndarray) -> float:
    """The least total cost of a hard labelling of N rows into K columns with exactly N/K rows per
    column (``cost`` N x K, K dividing N): the assignment problem with each column repeated N/K
    times, solved exactly by scipy's ``linear_sum_assignment``."""
    from scipy.optimize import linear_sum_assignment

    n, k = cost.shape
    wide = np.repeat(cost, n // k, axis=1)
    rows, cols = linear_sum_assignment(wide)
    return float(wide[rows, cols].sum())
