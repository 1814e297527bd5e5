# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 05's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 05_swav
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
import torch.nn.functional as F

import sslkit as sk

torch.set_default_dtype(torch.float32)

# %% [raw]
# # BEGIN QUESTION
# name: codes_with_queue
# points: 4

# %% [markdown]
# **Exercise 1 — soft codes with a queue [4 points].** When the batch $B$ is small compared
# with the $K$ prototypes, SwAV lets the scores of the last $L$ images (the queue) join the
# Sinkhorn problem, and keeps only the batch's codes. Implement
# `codes_with_queue(scores, queue_scores, epsilon, iters)`: `scores` (B, K) and
# `queue_scores` (L, K, possibly L = 0) are prototype scores. Stack them into one problem of
# $B + L$ rows, start from $Q \propto \exp(S / \varepsilon)$ with total mass 1, and run
# exactly `iters` iterations of SwAV's Sinkhorn (first every prototype gets mass $1/K$,
# then every row gets $1/(B+L)$). Return the batch's codes: a (B, K) float32 tensor whose
# rows sum to 1. Scores may come in float16 and $\varepsilon$ may be small: avoid
# overflowing `exp` (no `sk.swav_codes`).

# %% [raw]
# # BEGIN SOLUTION

# %%
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    # BEGIN SOLUTION
    s = torch.cat([queue_scores.double(), scores.double()]) / epsilon
    q = torch.exp(s - s.max())  # shifting by a constant leaves the normalised Q unchanged
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue_scores):].float()
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_s = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)) * 0.1
_q = codes_with_queue(_s, torch.zeros(0, 5), 0.05, 3)
assert tuple(_q.shape) == (8, 5), "return the batch's codes: (B, K)"
assert torch.allclose(_q.float().sum(1), torch.ones(8), atol=1e-5), "every code (row) must sum to 1"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the reference: plain float64 scaling as in SwAV's code, and sk.swav_codes (another implementation)
def _ref(scores, queue, eps, iters):
    s = torch.cat([queue.double(), scores.double()]) / eps
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue):]
_g = torch.Generator().manual_seed(1)
_s = F.normalize(torch.randn(64, 16, generator=_g), dim=1) @ F.normalize(torch.randn(10, 16, generator=_g), dim=1).T
for _it in (1, 3, 10):
    _q = codes_with_queue(_s, torch.zeros(0, 10), 0.05, _it)
    assert _q.dtype == torch.float32, "return float32 codes"
    assert torch.allclose(_q.double(), _ref(_s, torch.zeros(0, 10), 0.05, _it), atol=1e-5), f"wrong codes after {_it} iterations (no queue)"
assert torch.allclose(codes_with_queue(_s, torch.zeros(0, 10), 0.05, 3), sk.swav_codes(_s, 0.05, 3), atol=1e-5), "differs from sk.swav_codes"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# a batch smaller than K, with a queue: the queue's rows join the problem, only the batch's codes return
def _ref(scores, queue, eps, iters):
    s = torch.cat([queue.double(), scores.double()]) / eps
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue):]
_g = torch.Generator().manual_seed(2)
_C = F.normalize(torch.randn(30, 16, generator=_g), dim=1)
_s = F.normalize(torch.randn(8, 16, generator=_g), dim=1) @ _C.T
_qs = F.normalize(torch.randn(64, 16, generator=_g), dim=1) @ _C.T
_q = codes_with_queue(_s, _qs, 0.05, 3)
assert tuple(_q.shape) == (8, 30), "return only the batch's codes"
assert torch.allclose(_q.double(), _ref(_s, _qs, 0.05, 3), atol=1e-5), "wrong codes with a queue (B = 8 < K = 30, L = 64)"
_lib = sk.swav_codes(torch.cat([_qs, _s]), 0.05, 3)[64:]
assert torch.allclose(_q, _lib, atol=1e-5), "differs from sk.swav_codes on the stacked problem"

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
# float16 scores that reach 1 (every prototype is also a feature, the others lie near one) and small
# epsilons: exp(s / eps) overflows unless shifted, in float32 for eps = 0.01 and in any precision for 0.001
def _ref(scores, queue, eps, iters):
    s = torch.cat([queue.double(), scores.double()]) / eps
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue):]
_g = torch.Generator().manual_seed(3)
_C = F.normalize(torch.randn(12, 16, generator=_g), dim=1)
_z = F.normalize(_C.repeat(4, 1) + 0.3 * torch.randn(48, 16, generator=_g), dim=1)
_s = torch.cat([_C, _z[:20]]) @ _C.T
_qs = _z[20:] @ _C.T
for _eps in (0.01, 0.001):
    _q = codes_with_queue(_s.half(), _qs.half(), _eps, 3)
    assert torch.isfinite(_q.float()).all(), f"inf/NaN codes for float16 scores with epsilon = {_eps}"
    assert torch.allclose(_q.float().double(), _ref(_s.half(), _qs.half(), _eps, 3), atol=1e-4), f"wrong codes for float16, epsilon = {_eps}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: swav_loss
# points: 4

# %% [markdown]
# **Exercise 2 — the multi-crop swapped loss [4 points].** Implement SwAV's loss from the
# features: `z` is a list of V (B, d) unit-norm features, one per crop; the first `n_global`
# are the full-resolution crops; `prototypes` is (K, d), unit-norm. The scores of crop $v$
# are $z_v C^\top$. The codes $q_i$ of each global crop $i$ come from its scores *without
# gradient*, by SwAV's Sinkhorn (`sk.swav_codes(scores, epsilon, iters)` may be used here).
# Every other crop $v \ne i$ predicts $q_i$ with $p_v = \operatorname{softmax}(z_v C^\top/\tau)$,
# costing $-\sum_k q_i^{(k)} \log p_v^{(k)}$ averaged over the batch. The loss is the mean over
# the predicting crops of each code, then over the codes. Return a 0-d tensor through which
# gradients reach `z` and `prototypes`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    # BEGIN SOLUTION
    scores = [zv @ prototypes.T for zv in z]
    total = 0.0
    for i in range(n_global):
        with torch.no_grad():
            q = sk.swav_codes(scores[i].detach(), epsilon, iters)
        others = [v for v in range(len(z)) if v != i]
        total = total + sum(-(q * F.log_softmax(scores[v] / tau, dim=1)).sum(1).mean() for v in others) / len(others)
    return total / n_global
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_g = torch.Generator().manual_seed(0)
_z = [F.normalize(torch.randn(8, 4, generator=_g), dim=1) for _ in range(2)]
_C = F.normalize(torch.randn(5, 4, generator=_g), dim=1)
_l = swav_loss(_z, _C, 2)
assert torch.is_tensor(_l) and _l.ndim == 0, "return a 0-d tensor"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the reference is the library's loss (sslkit.methods.swapped_prediction_loss) on sk.swav_codes
from sslkit.methods import swapped_prediction_loss as _lib_loss
def _ref_loss(z, C, n_global, eps, tau, iters):
    s = [zv @ C.T for zv in z]
    return _lib_loss(s, [sk.swav_codes(s[i].detach(), eps, iters) for i in range(n_global)], tau)
_g = torch.Generator().manual_seed(1)
_C = F.normalize(torch.randn(20, 8, generator=_g), dim=1)
_z = [F.normalize(torch.randn(16, 8, generator=_g), dim=1) for _ in range(2)]
assert torch.isclose(swav_loss(_z, _C, 2, 0.05, 0.1, 3), _ref_loss(_z, _C, 2, 0.05, 0.1, 3), atol=1e-5), "wrong loss with two crops"
_z = [F.normalize(torch.randn(16, 8, generator=_g), dim=1) for _ in range(6)]
assert torch.isclose(swav_loss(_z, _C, 2, 0.05, 0.1, 3), _ref_loss(_z, _C, 2, 0.05, 0.1, 3), atol=1e-5), "wrong loss with 2 global + 4 local crops"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# gradients: the codes are targets (no gradient through Sinkhorn)
from sslkit.methods import swapped_prediction_loss as _lib_loss
def _ref_loss(z, C, n_global, eps, tau, iters):
    s = [zv @ C.T for zv in z]
    return _lib_loss(s, [sk.swav_codes(s[i].detach(), eps, iters) for i in range(n_global)], tau)
_g = torch.Generator().manual_seed(2)
_z0 = [F.normalize(torch.randn(12, 8, generator=_g), dim=1) for _ in range(4)]
_C0 = F.normalize(torch.randn(20, 8, generator=_g), dim=1)
_z, _C = [t.clone().requires_grad_() for t in _z0], _C0.clone().requires_grad_()
swav_loss(_z, _C, 2, 0.05, 0.1, 3).backward()
_zr, _Cr = [t.clone().requires_grad_() for t in _z0], _C0.clone().requires_grad_()
_ref_loss(_zr, _Cr, 2, 0.05, 0.1, 3).backward()
assert _C.grad is not None and all(t.grad is not None for t in _z), "no gradient reaches z or the prototypes"
assert torch.allclose(_C.grad, _Cr.grad, atol=1e-5), "wrong gradient for the prototypes (are the codes detached?)"
assert all(torch.allclose(a.grad, b.grad, atol=1e-5) for a, b in zip(_z, _zr)), "wrong gradient for z (are the codes detached?)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# closed form: features orthogonal to every prototype give uniform codes and predictions, loss = ln K
_C = torch.zeros(7, 8)
_C[:, :4] = F.normalize(torch.randn(7, 4, generator=torch.Generator().manual_seed(3)), dim=1)
_z = [torch.zeros(5, 8) for _ in range(3)]
for _t in _z:
    _t[:, 5] = 1.0
assert abs(float(swav_loss(_z, _C, 2)) - math.log(7)) < 1e-5, "uniform codes and predictions must give ln K"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: smallest_queue
# points: 1

# %% [markdown]
# **Exercise 3 — sizing the queue [1 point].** With batch size 64 and $K = 3000$
# prototypes, on one process, what is the smallest queue length that `sslkit` accepts? The
# batch plus the queue must hold at least $K$ images (otherwise the equipartition cannot
# hold), and the queue must hold at least one batch, since it shifts by one batch per step.

# %% [raw]
# # BEGIN SOLUTION

# %%
queue_length = 3000 - 64  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(queue_length, int), "give an integer"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force over every length, against sslkit's own configuration check
_cfg = sk.TrainConfig(method="swav", batch_size=64)
sk.set_value(_cfg, "num_prototypes", "3000")
_ok = []
for _L in range(0, 4000):
    sk.set_value(_cfg, "queue_length", str(_L))
    try:
        sk.METHODS["swav"].check_config(_cfg)
        _ok.append(_L)
    except sk.ConfigError:
        pass
assert queue_length == min(_ok), "not the smallest accepted queue length"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: collapse_loss
# points: 1

# %% [markdown]
# **Exercise 4 — the collapse value [1 point].** If $\varepsilon$ is far too large the
# codes are uniform, the network learns to predict uniformly, and the loss stops moving.
# At what value, for $K = 3000$ prototypes? Give the number (3 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
collapse_value = math.log(3000)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(collapse_value, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the cross-entropy of the uniform distribution with itself, summed term by term
assert abs(collapse_value - sum(-(1 / 3000) * math.log(1 / 3000) for _ in range(3000))) < 1e-3, "not the loss of uniform codes and predictions"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
