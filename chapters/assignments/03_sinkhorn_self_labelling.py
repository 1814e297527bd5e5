# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 03's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 03_sinkhorn_self_labelling
# init_cell: true
# check_all_cell: true
# export_cell:
#   pdf: false
#   run_tests: false
#   instructions: "Hand in the zip, or this notebook itself, as your course asks."
# generate:
#   pdf: false
#   zips: false

# %% [markdown]
# ## Exercises
#
# These exercises are self-contained: they need no dataset and no training run. Replace
# every `...` with your code and run the cell. In the course edition of these exercises a
# check cell under each answer runs its public tests; the grader also runs hidden tests on
# further inputs (random and edge cases). Points are in brackets.

# %%
import math

import torch

import sslkit as sk

torch.set_default_dtype(torch.float32)

# %% [raw]
# # BEGIN QUESTION
# name: sinkhorn_log
# points: 4

# %% [markdown]
# **Exercise 1 — Sinkhorn-Knopp in the log domain [4 points].** Plain scaling,
# $Q = \operatorname{diag}(a) P^\lambda \operatorname{diag}(b)$, breaks down for large $\lambda$
# (sslkit's lab preset uses $\lambda = 25$, and a confident network's log-probabilities reach
# $-30$ and below; Exercise 4 asks why). Implement Sinkhorn on the potentials instead: with
# $\log Q_{iy} = \lambda \log P_{iy} + f_i + g_y$,
#
# * $g \leftarrow \log c - \operatorname{logsumexp}_i(\lambda \log P_{iy} + f_i)$ (columns right), then
# * $f \leftarrow \log r - \operatorname{logsumexp}_y(\lambda \log P_{iy} + g_y)$ (rows right),
#
# starting from $f = 0$, for exactly `iters` iterations (one iteration = the column update,
# then the row update). `r` and `c` default to uniform marginals $1/N$ and $1/K$. Work in
# float64 whatever the input dtype (it may be float16) and return $\log Q$, an (N, K)
# float64 tensor. Use `torch.logsumexp`; no `sk.sinkhorn`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    # BEGIN SOLUTION
    log_k = lam * log_p.double()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n), dtype=torch.float64) if r is None else r.double().log()
    log_c = torch.full((k,), -math.log(k), dtype=torch.float64) if c is None else c.double().log()
    f = torch.zeros(n, dtype=torch.float64)
    g = torch.zeros(k, dtype=torch.float64)
    for _ in range(iters):
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=0)
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=1)
    return log_k + f[:, None] + g[None, :]
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_lp = torch.log_softmax(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), 1)
_lq = sinkhorn_log(_lp, 2.0, iters=50)
assert tuple(_lq.shape) == (6, 3) and _lq.dtype == torch.float64, "return log Q: an (N, K) float64 tensor"
assert torch.allclose(_lq.exp().sum(1), torch.full((6,), 1 / 6, dtype=torch.float64), atol=1e-9), "rows must sum to 1/N"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# plain scaling in float64 (lambda small enough not to underflow) is the reference, iterate by iterate
def _plain(log_p, lam, r, c, iters):
    K = torch.exp(lam * log_p.double())
    a = torch.ones(K.shape[0], dtype=torch.float64)
    for _ in range(iters):
        b = c / (K.T @ a)
        a = r / (K @ b)
    return a[:, None] * K * b[None, :]
_g = torch.Generator().manual_seed(1)
_lp = torch.log_softmax(torch.randn(50, 10, generator=_g) * 2, 1)
_r, _c = torch.full((50,), 1 / 50, dtype=torch.float64), torch.full((10,), 0.1, dtype=torch.float64)
for _it in (1, 7, 60):
    assert torch.allclose(sinkhorn_log(_lp, 5.0, iters=_it).exp(), _plain(_lp, 5.0, _r, _c, _it), rtol=1e-7, atol=1e-12), \
        f"the plan after {_it} iterations differs from Sinkhorn's"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# a batch smaller than K, non-uniform marginals, float16 input and lambda = 1000 (plain scaling underflows):
# log Q after exactly 5 iterations, against the two updates written out entry by entry in Python floats
_g = torch.Generator().manual_seed(2)
_lp = torch.log_softmax(torch.randn(3, 10, generator=_g), 1).half()
_r = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
_c = torch.rand(10, generator=_g, dtype=torch.float64) + 0.1
_c = _c / _c.sum()
_lq = sinkhorn_log(_lp, 1000.0, r=_r, c=_c, iters=5)
assert _lq.dtype == torch.float64, "work in float64 even for float16 input"
def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))
_L = [[1000.0 * v for v in row] for row in _lp.double().tolist()]
_f, _h = [0.0] * 3, [0.0] * 10
for _ in range(5):
    _h = [math.log(_c[y]) - _lse([_L[i][y] + _f[i] for i in range(3)]) for y in range(10)]
    _f = [math.log(_r[i]) - _lse([_L[i][y] + _h[y] for y in range(10)]) for i in range(3)]
_ref = torch.tensor([[_L[i][y] + _f[i] + _h[y] for y in range(10)] for i in range(3)], dtype=torch.float64)
assert torch.allclose(_lq, _ref, rtol=1e-9, atol=1e-6), "wrong log Q after 5 iterations with r, c given (N < K, fp16, lambda = 1000)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# lambda large: plain scaling underflows, the log domain must not. The solution is characterised by
# its marginals and the Gibbs form log Q - lam log P = f_i + g_y (a sum of a row and a column term).
_g = torch.Generator().manual_seed(3)
_lp = torch.log_softmax(torch.randn(20, 4, generator=_g) * 3, 1)
_lq = sinkhorn_log(_lp, 500.0, iters=3000)
assert torch.isfinite(_lq).all(), "log Q has inf/NaN for lambda = 500"
assert torch.allclose(torch.logsumexp(_lq, 1), torch.full((20,), -math.log(20), dtype=torch.float64), atol=1e-9), "rows are not 1/N"
assert torch.allclose(torch.logsumexp(_lq, 0).exp(), torch.full((4,), 0.25, dtype=torch.float64), rtol=1e-2), "columns are not 1/K"
_res = _lq - 500.0 * _lp.double()
_res = _res - _res.mean(1, keepdim=True) - _res.mean(0, keepdim=True) + _res.mean()
assert _res.abs().max() < 1e-6 * 500, "log Q - lam log P is not of the form f_i + g_y"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: sela_objective
# points: 3

# %% [markdown]
# **Exercise 2 — the objective Sinkhorn minimises [3 points].** Implement
# $E(Q) = \langle Q, -\log P\rangle - \frac1\lambda H(Q)$ with
# $H(Q) = -\sum_{iy} Q_{iy}\log Q_{iy}$ and the convention $0 \log 0 = 0$ (a hard
# labelling has zeros in $Q$). Return a Python float or a 0-d tensor.

# %% [raw]
# # BEGIN SOLUTION

# %%
def sela_objective(Q, log_p, lam):
    # BEGIN SOLUTION
    Q, log_p = Q.double(), log_p.double()
    ent = -torch.special.xlogy(Q, Q).sum()
    return float((Q * -log_p).sum() - ent / lam)
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# uniform P and uniform Q: <Q, -log P> = ln K and H(Q) = ln(N K)
_N, _K = 4, 5
_val = float(sela_objective(torch.full((_N, _K), 1 / (_N * _K)), torch.full((_N, _K), -math.log(_K)), 2.0))
assert abs(_val - (math.log(_K) - math.log(_N * _K) / 2.0)) < 1e-6, "wrong value on uniform P and Q"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force, entry by entry, on random input; then a hard labelling (zeros in Q)
_g = torch.Generator().manual_seed(4)
_lp = torch.log_softmax(torch.randn(7, 3, generator=_g, dtype=torch.float64), 1)
_Q = torch.rand(7, 3, generator=_g, dtype=torch.float64)
_Q = _Q / _Q.sum()
_ref = sum(_Q[i, y].item() * -_lp[i, y].item() + _Q[i, y].item() * math.log(_Q[i, y].item()) / 1.5
           for i in range(7) for y in range(3))
assert abs(float(sela_objective(_Q, _lp, 1.5)) - _ref) < 1e-9, "wrong value on a random plan"
_H = torch.zeros(6, 3, dtype=torch.float64)
_H[torch.arange(6), torch.arange(6) % 3] = 1 / 6
_val = float(sela_objective(_H, _lp[:6], 1.5))
assert math.isfinite(_val), "0 log 0 must count as 0 (a hard labelling gave inf/NaN)"
assert abs(_val - (float((_H * -_lp[:6]).sum()) - math.log(6) / 1.5)) < 1e-9, "zeros in Q must contribute 0 log 0 = 0"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# optimality: Sinkhorn's plan beats every feasible perturbation (same marginals) under E
_g = torch.Generator().manual_seed(5)
_lp = torch.log_softmax(torch.randn(8, 4, generator=_g, dtype=torch.float64) * 2, 1)
_star = sk.sinkhorn(_lp, 3.0, max_iters=5000, tol=1e-12).plan.double()
_best = float(sela_objective(_star, _lp, 3.0))
for _ in range(20):
    _i, _j = torch.randperm(8, generator=_g)[:2].tolist()
    _y, _z = torch.randperm(4, generator=_g)[:2].tolist()
    _d = 0.5 * min(_star[_i, _z], _star[_j, _y]).item()
    _P = _star.clone()
    _P[_i, _y] += _d; _P[_j, _z] += _d; _P[_i, _z] -= _d; _P[_j, _y] -= _d
    assert float(sela_objective(_P, _lp, 3.0)) > _best, "Sinkhorn's plan should minimise E over the polytope"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: two_by_two
# points: 1

# %% [markdown]
# **Exercise 3 — a plan by hand [1 point].** Two images, two clusters, uniform marginals
# ($r = c = (\tfrac12, \tfrac12)$), $P = \begin{pmatrix}0.8 & 0.2\\ 0.2 & 0.8\end{pmatrix}$ and
# $\lambda = 2$. Derive $Q_{11}$ from $Q = \operatorname{diag}(a) P^\lambda \operatorname{diag}(b)$
# and the symmetry of the problem, and give it as a number (4 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
q11 = 0.5 * 0.8 ** 2 / (0.8 ** 2 + 0.2 ** 2)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(q11, (int, float)) and 0 <= q11 <= 0.5, "Q_11 is a number between 0 and 1/2"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
_P = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)
_Q = sk.sinkhorn(_P.log(), 2.0, max_iters=10000, tol=1e-12).plan.double()
assert abs(q11 - _Q[0, 0].item()) < 1e-4, "not the entropic plan's Q_11"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: why_log_domain
# points: 1

# %% [markdown]
# **Exercise 4 — why the log domain [1 point].** Plain scaling with $\lambda = 500$ on
# float32 log-probabilities returns NaN. Why? Set `why` to one letter.
#
# * `"a"`: the plan's rows no longer sum to $1/N$ once $\lambda$ exceeds $N$.
# * `"b"`: float32 cannot hold $\lambda$ itself.
# * `"c"`: $P^\lambda = e^{\lambda \log P}$ underflows to 0, a whole column of it can be 0, and $b = c / (K^\top a)$ divides by 0.
# * `"d"`: Sinkhorn diverges for $\lambda > 1$.

# %% [raw]
# # BEGIN SOLUTION

# %%
why = "c"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert why in ("a", "b", "c", "d"), "answer with one letter: 'a', 'b', 'c' or 'd'"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
assert why == "c", "not the reason"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
