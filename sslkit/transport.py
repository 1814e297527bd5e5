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


_TINY = 1e-30  # kernel entries below this fraction of their row's largest are dropped (see _kernel)


def _row_blocks(n: int, k: int, device) -> range:
    """Start rows of the blocks in which N x K element-wise passes run: about 1 MiB of float32
    on a CPU, so a block's several steps stay in cache and memory is read and written once;
    all rows at once on an accelerator (one kernel launch per step)."""
    step = max(1, (1 << 18) // max(k, 1)) if torch.device(device).type == "cpu" else max(n, 1)
    return range(0, n, step)


def _kernel(scores: torch.Tensor, lam: float, alpha: torch.Tensor, beta: torch.Tensor,
            out: torch.Tensor | None = None) -> torch.Tensor:
    """``exp(lam * scores - alpha - beta)`` (float32, into ``out``) with entries below ``_TINY``
    set to exactly zero.

    Rows are shifted to a maximum of at most one, so a dropped entry is below 1e-30 of its row's
    largest: a relative change of the row sums below K * 1e-30. Without the cut these entries
    and their products with the scalings are subnormal floats, which x86 CPUs compute 10-100x
    slower (Sinkhorn ran at a fifth of the memory bandwidth). The cut is undone when some
    column has no entry above 1e-9 (that column's mass could sit in its tiny entries), so a
    dropped entry is also below 1e-21 of its column's largest.
    """
    n, k = scores.shape
    kmat = torch.empty(n, k, device=scores.device) if out is None else out
    colmax = torch.zeros(k, device=scores.device)
    steps = _row_blocks(n, k, scores.device)
    for i in steps:
        blk = kmat[i:i + steps.step]
        blk.copy_(scores[i:i + steps.step]).mul_(lam).sub_(alpha[i:i + steps.step, None]).sub_(beta[None, :]).exp_()
        torch.maximum(colmax, blk.amax(0), out=colmax)
        blk.masked_fill_(blk < _TINY, 0.0)
    if not bool((dist.all_reduce_max(colmax) >= 1e-9).all()):  # rare: keep every entry
        for i in steps:
            blk = kmat[i:i + steps.step]
            blk.copy_(scores[i:i + steps.step]).mul_(lam).sub_(alpha[i:i + steps.step, None]).sub_(beta[None, :]).exp_()
    return kmat


def _check_scores(scores, lam, r, c):
    """Errors a caller can make, reported before any work."""
    if not torch.is_tensor(scores) or scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D tensor (N, K), got {getattr(scores, 'shape', type(scores))}")
    n, k = scores.shape
    n_total = n if not dist.is_distributed() else int(dist.all_reduce_sum(torch.tensor([n], device=scores.device)).item())
    if n_total == 0 or k == 0:
        raise ValueError(f"scores is empty, shape ({n}, {k}): Sinkhorn needs at least one sample and one "
                         "cluster; skip the call when there is nothing to label")
    try:
        lam_ok = math.isfinite(float(lam)) and float(lam) > 0
    except (TypeError, ValueError):
        lam_ok = False
    if not lam_ok:
        raise ValueError(f"lam must be a positive finite number (inverse regularisation, e.g. 25 for SeLa, "
                         f"1/0.05 for SwAV), got {lam!r}")
    if n and not bool(torch.isfinite(scores.sum(dtype=torch.float32))) and not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise ValueError(f"scores contain {bad} NaN or infinite entries; pass finite scores (for SeLa use "
                         "log_softmax of the logits, not log of probabilities that can be 0)")
    for name, m, size in (("r", r, n), ("c", c, k)):
        if m is None:
            continue
        if not torch.is_tensor(m) or m.shape != (size,):
            raise ValueError(f"marginal {name} must have shape ({size},), got {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()) or bool((m <= 0).any()):
            raise ValueError(f"marginal {name} must be finite and strictly positive (a sample or cluster "
                             f"with zero mass should be left out of scores), got min {m.float().min().item():.3g}")


@torch.no_grad()
def _log_marginals(n: int, k: int, r, c, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """log r (this process's rows; uniform over every process's rows by default) and log c
    (uniform by default); raises ValueError when their masses differ."""
    n_total = dist.all_reduce_sum(torch.tensor(float(n), device=dev)).item()
    log_r = torch.full((n,), -math.log(n_total), device=dev) if r is None else torch.log(r.float().to(dev))
    log_c = torch.full((k,), -math.log(k), device=dev) if c is None else torch.log(c.float().to(dev))
    mass_r = dist.all_reduce_sum(log_r.exp().sum()).item()
    if abs(mass_r - log_c.exp().sum().item()) > 1e-4 * max(1.0, mass_r):
        raise ValueError(f"marginals must have equal mass: sum(r)={mass_r:.6g}, sum(c)={log_c.exp().sum().item():.6g}")
    return log_r, log_c


def sinkhorn(scores: torch.Tensor, lam: float, r: torch.Tensor | None = None, c: torch.Tensor | None = None,
             max_iters: int = 1000, tol: float = 1e-6, min_iters: int = 0,
             check_every: int | None = None) -> SinkhornResult:
    """Solve the entropy-regularised equipartition problem for ``scores`` (N, K).

    lam: inverse regularisation (SeLa's lambda, SwAV's 1/epsilon). Larger is closer to the LP.
    r, c: row (N,) and column (K,) marginals; defaults uniform with total mass 1. Under
        ``torch.distributed`` ``r`` holds this process's rows; ``c`` is global.
    max_iters, tol: stop when the L1 error of the column (cluster) marginals is below
        ``tol`` or after ``max_iters`` iterations.
        ``min_iters`` forces a fixed count (SwAV: exactly 3, ``max_iters=3, tol=0``).
        Each iteration scales the columns, then the rows, as SwAV's code does, so the rows
        (one unit of mass per sample) are exact on return.
    check_every: iterations between the host's checks of the error (and of under/overflow).
        The error itself is free (the column sums of the next step give it); reading it stalls
        an accelerator, so the default is 1 on a CPU (same iterations as always) and 10 on
        other devices (the SeLa code's choice): ``iterations`` is then a multiple of 10 or
        ``max_iters``. Should a check find an underflow, the iterations resume in the log
        domain from the last checked state.

    Raises ValueError for non-finite scores, an empty problem, ``lam <= 0`` and
    non-positive or non-finite marginals.
    """
    _check_scores(scores, lam, r, c)
    lam = float(lam)
    n, k = scores.shape
    dev = scores.device
    check_every = max(1, int(check_every or (1 if dev.type == "cpu" else 10)))
    log_r, log_c = _log_marginals(n, k, r, c, dev)
    rr, cc = log_r.exp(), log_c.exp()
    # lam * max = max of lam * scores exactly (lam > 0); the kernel is the one N x K buffer
    alpha = scores.max(1).values.float() * lam if n else torch.zeros(0, device=dev)
    beta = torch.zeros(k, device=dev)
    kmat = _kernel(scores, lam, alpha, beta)
    # a = exp(alpha - max alpha) makes the plan exp(log_k - const): the iterates are those of
    # plain scaling on exp(log_k) (SwAV's), step for step
    top = dist.all_reduce_max(alpha.max().reshape(1) if n else torch.full((1,), -float("inf"), device=dev))
    a, b = torch.exp(alpha - top), torch.ones(k, device=dev)
    err, done, underflow = float("inf"), 0, False
    bad = torch.zeros((), dtype=torch.bool, device=dev)  # an under/overflow since the last check
    saved = (a, b, alpha, beta, done)  # the last checked state, where the log domain would resume
    while True:
        col = dist.all_reduce_sum(a @ kmat)  # column sums of diag(a) K
        bad = bad | (col <= 0).any()  # a cluster's column underflowed to zero
        if done % check_every == 0 or done >= max_iters:
            if _any_everywhere(bad):
                underflow = True
                break
            if done > 0 or max_iters == 0:  # column sums of the current plan are b * col: a free check
                err = (b * col - cc).abs().sum().item()
                if done >= max_iters or (err < tol and done >= min_iters):
                    break
        b = cc / col
        a = rr / (kmat @ b)
        done += 1
        bad = bad | ~torch.isfinite(a).all()  # an image's row underflowed to zero
        if done % check_every == 0 or done >= max_iters:
            if _any_everywhere(bad):
                underflow = True
                break
            if _any_everywhere(torch.maximum(a.log().abs().max(), b.log().abs().max()) > 30):
                alpha, beta = alpha - a.log(), beta - b.log()  # absorb the scalings into the kernel
                kmat = _kernel(scores, lam, alpha, beta, out=kmat)
                a, b = torch.ones_like(a), torch.ones_like(b)
            saved = (a, b, alpha, beta, done)
    if underflow:  # finish in the log domain from the last checked state
        a, b, alpha, beta, done = saved
        log_k = kmat.copy_(scores).mul_(lam)  # the kernel's buffer, reused
        u, v, extra, err = _sinkhorn_log(log_k, log_r, log_c, a.log() - alpha, b.log() - beta,
                                         max_iters - done, tol, max(0, min_iters - done))
        done += extra
        plan = log_k.add_(u[:, None]).add_(v[None, :]).exp_()
    else:
        plan = kmat
        steps = _row_blocks(n, k, dev)
        for i in steps:  # diag(a) K diag(b), in place, one pass
            plan[i:i + steps.step].mul_(a[i:i + steps.step, None]).mul_(b[None, :])
    return SinkhornResult(plan=plan, iterations=done, marginal_error=err, converged=err < tol)


def swav_codes(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's online codes: ``iterations`` Sinkhorn steps on ``exp(scores / epsilon)``, rows summing to 1.
    Under ``torch.distributed`` each process passes its own rows and gets their codes; the
    column sums span every process, so the codes equipartition the global batch."""
    return sinkhorn(scores, 1.0 / epsilon, max_iters=iterations, tol=0.0, min_iters=iterations).codes()


def sela_labels(log_probs: torch.Tensor, lam: float = 25.0, tol: float = 1e-2, max_iters: int = 1000,
                exact: bool = False) -> tuple[torch.Tensor, SinkhornResult]:
    """SeLa's self-labelling step: Sinkhorn on ``P^lambda`` from log-probabilities (N, K).

    Returns hard labels (argmax of the plan, or an exactly equipartitioned rounding with
    ``exact=True``) and the Sinkhorn result. Under ``torch.distributed`` each process passes
    its own rows (Sinkhorn reduces the column sums across processes) and gets the labels of
    every process's rows, in rank order: the labelling of the whole data set.
    """
    res = sinkhorn(log_probs, lam, max_iters=max_iters, tol=tol)
    if exact:  # the rounding needs every row of the plan
        labels = balanced_rounding(dist.all_gather_rows(res.plan))
    else:
        labels = dist.all_gather_rows(res.labels())
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
