r"""Equipartitioned labelling as optimal transport, solved by Sinkhorn-Knopp.

Notation (samples are rows, clusters are columns):

* ``S`` (N, K): scores. For SeLa, ``S = log P`` with ``P`` the network's softmax
  probabilities; for SwAV, ``S = Z C^T`` the similarities of features to prototypes.
* The transport polytope ``U(r, c) = {Q >= 0 : Q 1 = r, Q^T 1 = c}`` with row marginals
  ``r`` (default ``1/N`` each) and column marginals ``c`` (default ``1/K``: equipartition).
* The entropy-regularised problem

  .. math:: \min_{Q \in U(r,c)} \langle Q, -S \rangle - \tfrac{1}{\lambda} H(Q)

  has the solution ``Q = diag(a) exp(lambda S) diag(b)``: for SeLa that is
  ``diag(a) P^lambda diag(b)``, for SwAV ``exp(Z C^T / eps)`` scaled, with ``lambda = 1/eps``.
  Both are the same call here: ``sinkhorn(S, lam)``.
* In the usual optimal-transport convention (POT: ``ot.sinkhorn(a, b, M, reg)``) the cost
  is ``M = -S`` (SeLa: ``M = -log P``) and ``reg = 1/lambda``; the kernel is ``exp(-M/reg)``.
  ``sinkhorn(S, lam, r, c).plan`` equals ``ot.sinkhorn(r, c, -S, 1/lam)``.

The iterations scale a kernel whose rows are shifted to a maximum of one, absorbing the
scalings into the shifts whenever they pass e^30 (Schmitzer's stabilisation): two
matrix-vector products per iteration. Should a row or a column underflow entirely (huge
``lambda``), they continue in the log domain (log-sum-exp), so no ``lambda`` overflows or
yields NaN; half-precision input is computed in float32. Under
``torch.distributed`` each process holds some rows (samples) and the column sums are
all-reduced, which gives the same plan as one process holding all rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import dist


@dataclass
class SinkhornResult:
    plan: torch.Tensor  # (N, K) transport plan, float32; sums to 1 (over all processes)
    iterations: int
    marginal_error: float  # L1 error of the column (cluster) marginals; rows are exact after the last step
    converged: bool

    def codes(self) -> torch.Tensor:
        """Soft codes: the plan with each row rescaled to sum to 1 (SwAV's ``q``)."""
        return self.plan / self.plan.sum(1, keepdim=True)

    def labels(self) -> torch.Tensor:
        """Hard labels by argmax over clusters (SeLa's choice)."""
        return self.plan.argmax(1)


def _dist_logsumexp_rows(x: torch.Tensor) -> torch.Tensor:
    """log sum_i exp(x[i, k]) over the rows of every process (one value per column)."""
    m = x.max(0).values
    dist.all_reduce_max(m)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = torch.exp(x - m).sum(0)
    dist.all_reduce_sum(s)
    return torch.log(s) + m


def _any_everywhere(flag: torch.Tensor) -> bool:
    """True when ``flag`` is true on any process (so every process takes the same branch)."""
    return bool(dist.all_reduce_max(flag.float().reshape(1)).item())


def _sinkhorn_log(log_k, log_r, log_c, u, v, max_iters, tol, min_iters):
    """Sinkhorn in the log domain (log-sum-exp throughout): slower, but nothing can overflow."""
    err, done = float("inf"), 0
    for it in range(max_iters + 1):
        lse_cols = _dist_logsumexp_rows(log_k + u[:, None])
        if it > 0 or max_iters == 0:
            err = (torch.exp(v + lse_cols) - log_c.exp()).abs().sum().item()
            if it == max_iters or (err < tol and it >= min_iters):
                break
        v = log_c - lse_cols  # clusters get their mass ...
        u = log_r - torch.logsumexp(log_k + v[None, :], dim=1)  # ... then samples (rows exact)
        done = it + 1
    return u, v, done, err


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, lam: float, r: torch.Tensor | None = None, c: torch.Tensor | None = None,
             max_iters: int = 1000, tol: float = 1e-6, min_iters: int = 0) -> SinkhornResult:
    """Solve the entropy-regularised equipartition problem for ``scores`` (N, K).

    lam: inverse regularisation (SeLa's lambda, SwAV's 1/epsilon). Larger is closer to the LP.
    r, c: row (N,) and column (K,) marginals; defaults uniform with total mass 1. Under
        ``torch.distributed`` ``r`` holds this process's rows; ``c`` is global.
    max_iters, tol: stop when the L1 error of the column (cluster) marginals is below
        ``tol`` (checked each iteration at no extra cost) or after ``max_iters`` iterations.
        ``min_iters`` forces a fixed count (SwAV: exactly 3, ``max_iters=3, tol=0``).
        Each iteration scales the columns, then the rows, as SwAV's code does, so the rows
        (one unit of mass per sample) are exact on return.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, K), got shape {tuple(scores.shape)}")
    log_k = scores.float() * lam
    n, k = log_k.shape
    dev = log_k.device
    n_total = dist.all_reduce_sum(torch.tensor(float(n), device=dev)).item()
    log_r = torch.full((n,), -math.log(n_total), device=dev) if r is None else torch.log(r.float().to(dev))
    log_c = torch.full((k,), -math.log(k), device=dev) if c is None else torch.log(c.float().to(dev))
    mass_r = dist.all_reduce_sum(log_r.exp().sum()).item()
    if abs(mass_r - log_c.exp().sum().item()) > 1e-4 * max(1.0, mass_r):
        raise ValueError(f"marginals must have equal mass: sum(r)={mass_r:.6g}, sum(c)={log_c.exp().sum().item():.6g}")
    # Fast path: scaling vectors a, b on a kernel whose rows are shifted to a maximum of 1,
    # plan = diag(a) exp(log_k - alpha - beta) diag(b). When a scaling grows past e^30 it is
    # absorbed into the shifts (alpha, beta) and the kernel recomputed (Schmitzer's
    # stabilisation); if a column underflows entirely, the log-domain iterations take over.
    rr, cc = log_r.exp(), log_c.exp()
    alpha = log_k.max(1).values
    beta = torch.zeros(k, device=dev)
    kmat = (log_k - alpha[:, None]).exp_()  # in place: one N x K buffer besides log_k
    # a = exp(alpha - max alpha) makes the plan exp(log_k - const): the iterates are those of
    # plain scaling on exp(log_k) (SwAV's), step for step
    top = dist.all_reduce_max(alpha.max().reshape(1) if n else torch.full((1,), -float("inf"), device=dev))
    a, b = torch.exp(alpha - top), torch.ones(k, device=dev)
    err, done, underflow = float("inf"), 0, False
    while True:
        col = dist.all_reduce_sum(a @ kmat)  # column sums of diag(a) K
        if _any_everywhere((col <= 0).any()):
            underflow = True  # a cluster's column underflowed to zero
            break
        if done > 0 or max_iters == 0:  # column sums of the current plan are b * col: a free check
            err = (b * col - cc).abs().sum().item()
            if done >= max_iters or (err < tol and done >= min_iters):
                break
        b_new = cc / col
        a_new = rr / (kmat @ b_new)
        if _any_everywhere(~torch.isfinite(a_new).all()):
            underflow = True  # an image's row underflowed to zero
            break
        a, b, done = a_new, b_new, done + 1
        if _any_everywhere(torch.maximum(a.log().abs().max(), b.log().abs().max()) > 30):
            alpha, beta = alpha - a.log(), beta - b.log()  # absorb the scalings into the kernel
            kmat = (log_k - alpha[:, None]).sub_(beta[None, :]).exp_()
            a, b = torch.ones_like(a), torch.ones_like(b)
    if underflow:  # finish in the log domain from the current state
        u, v, extra, err = _sinkhorn_log(log_k, log_r, log_c, a.log() - alpha, b.log() - beta,
                                         max_iters - done, tol, max(0, min_iters - done))
        done += extra
        plan = torch.exp(log_k + u[:, None] + v[None, :])
    else:
        plan = kmat.mul_(a[:, None]).mul_(b[None, :])
    return SinkhornResult(plan=plan, iterations=done, marginal_error=err, converged=err < tol)


def swav_codes(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's online codes: ``iterations`` Sinkhorn steps on ``exp(scores / epsilon)``, rows summing to 1."""
    return sinkhorn(scores, 1.0 / epsilon, max_iters=iterations, tol=0.0, min_iters=iterations).codes()


def sela_labels(log_probs: torch.Tensor, lam: float = 25.0, tol: float = 1e-2, max_iters: int = 1000,
                exact: bool = False) -> tuple[torch.Tensor, SinkhornResult]:
    """SeLa's self-labelling step: Sinkhorn on ``P^lambda`` from log-probabilities (N, K).

    Returns hard labels (argmax of the plan, or an exactly equipartitioned rounding with
    ``exact=True``) and the Sinkhorn result.
    """
    res = sinkhorn(log_probs, lam, max_iters=max_iters, tol=tol)
    labels = balanced_rounding(res.plan) if exact else res.labels()
    return labels, res


def cluster_capacities(n: int, c: torch.Tensor) -> torch.Tensor:
    """Integer cluster sizes summing to ``n``, proportional to ``c`` (largest remainders)."""
    target = c.double() / c.double().sum() * n
    cap = torch.floor(target).long()
    rest = n - int(cap.sum())
    if rest > 0:
        cap[torch.argsort(target - cap.double(), descending=True)[:rest]] += 1
    return cap


@torch.no_grad()
def balanced_rounding(plan: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
    """Hard labels with exactly the cluster sizes of the column marginals (``N/K`` each by default).

    Greedy: every sample takes its best cluster; an over-full cluster keeps the samples
    with the largest plan values and releases the others, which then try their next-best
    cluster with room. Ends when every cluster is within capacity (at most K rounds).
    """
    n, k = plan.shape
    cap = cluster_capacities(n, plan.new_ones(k) if c is None else c).to(plan.device)
    labels = torch.full((n,), -1, dtype=torch.long, device=plan.device)
    score = plan.float().clone()
    free = cap.clone()
    for _ in range(k + 1):
        todo = torch.nonzero(labels < 0).flatten()
        if len(todo) == 0:
            break
        best = score[todo].argmax(1)
        for j in torch.unique(best).tolist():
            cand = todo[best == j]
            room = int(free[j])
            if room <= 0:
                continue
            keep = cand[torch.argsort(score[cand, j], descending=True)[:room]]
            labels[keep] = j
            free[j] -= len(keep)
        full = free <= 0
        score[:, full] = -float("inf")
    return labels


def exact_transport(cost: torch.Tensor, r: torch.Tensor | None = None, c: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """The exact optimal plan of ``min <Q, cost>`` over ``U(r, c)`` (a linear programme).

    Solved by scipy's HiGHS; meant for small N x K (the chapters and the tests). Returns the
    plan (float64) and its cost.
    """
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack

    n, k = cost.shape
    r = torch.full((n,), 1.0 / n, dtype=torch.float64) if r is None else r.double().cpu()
    c = torch.full((k,), 1.0 / k, dtype=torch.float64) if c is None else c.double().cpu()
    idx = np.arange(n * k)
    rows = coo_matrix((np.ones(n * k), (idx // k, idx)), shape=(n, n * k))
    cols = coo_matrix((np.ones(n * k), (idx % k, idx)), shape=(k, n * k))
    res = linprog(cost.double().cpu().numpy().ravel(), A_eq=vstack([rows, cols]).tocsr(),
                  b_eq=np.concatenate([r.numpy(), c.numpy()]), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the transport LP failed: {res.message}")
    plan = torch.from_numpy(res.x.reshape(n, k))
    return plan, float(res.fun)
