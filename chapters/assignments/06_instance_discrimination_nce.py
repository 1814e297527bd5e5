# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 06's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 06_instance_discrimination_nce
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
# name: nce_loss
# points: 4

# %% [markdown]
# **Exercise 1 — h(i, v) and the NCE loss [4 points].** Implement the paper's loss
# `nce_loss(f, idx, noise, bank, tau, Z)`: `f` (B, d) unit features, `idx` (B,) each image's
# own index, `noise` (B, m) noise indices drawn uniformly ($P_n = 1/N$), `bank` (N, d), the
# temperature `tau` and a fixed normaliser `Z`. With $P(j \mid f) = \exp(v_j^\top f/\tau)/Z$
# and $h(j, f) = P(j\mid f) / (P(j\mid f) + m P_n)$, the loss of one image is
# $-\log h(i, f) - \sum_{j \in \text{noise}} \log(1 - h(j, f))$; return its mean over the
# batch (a 0-d tensor through which gradients reach `f`). No `sk.nce_loss`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def nce_loss(f, idx, noise, bank, tau, Z):
    # BEGIN SOLUTION
    n, m = len(bank), noise.shape[1]
    p_pos = torch.exp((f * bank[idx]).sum(1) / tau) / Z
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise]) / tau) / Z
    mass = m / n
    h_pos = p_pos / (p_pos + mass)
    one_minus_h = mass / (p_noise + mass)
    return -(torch.log(h_pos) + torch.log(one_minus_h).sum(1)).mean()
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_g = torch.Generator().manual_seed(0)
_bank = F.normalize(torch.randn(50, 8, generator=_g), dim=1)
_f = F.normalize(torch.randn(4, 8, generator=_g), dim=1)
_l = nce_loss(_f, torch.arange(4), torch.randint(0, 50, (4, 6), generator=_g), _bank, 0.1, 50.0)
assert torch.is_tensor(_l) and _l.ndim == 0 and torch.isfinite(_l), "return a finite 0-d tensor"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force: h and the loss image by image, sample by sample, in float64
def _brute(f, idx, noise, bank, tau, Z):
    n, m = len(bank), noise.shape[1]
    total = 0.0
    for b in range(len(f)):
        def h(j):
            p = math.exp(float(bank[j].double() @ f[b].double()) / tau) / Z
            return p / (p + m / n)
        total += -math.log(h(int(idx[b]))) - sum(math.log(1 - h(int(j))) for j in noise[b])
    return total / len(f)
_g = torch.Generator().manual_seed(1)
for _n, _m, _tau in ((100, 10, 0.1), (30, 1, 0.5), (500, 64, 0.07)):
    _bank = F.normalize(torch.randn(_n, 16, generator=_g), dim=1)
    _f = F.normalize(torch.randn(5, 16, generator=_g), dim=1)
    _idx = torch.randint(0, _n, (5,), generator=_g)
    _noise = torch.randint(0, _n, (5, _m), generator=_g)
    _Z = float(torch.exp(_f @ _bank.T / _tau).sum(1).mean())
    assert abs(float(nce_loss(_f, _idx, _noise, _bank, _tau, _Z)) - _brute(_f, _idx, _noise, _bank, _tau, _Z)) < 1e-4, \
        f"wrong loss for N={_n}, m={_m}, tau={_tau}"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# against the library (sk.nce_scores + sk.nce_loss, another implementation), gradients included
_g = torch.Generator().manual_seed(2)
_bank = F.normalize(torch.randn(200, 16, generator=_g), dim=1)
_f0 = F.normalize(torch.randn(8, 16, generator=_g), dim=1)
_idx = torch.randint(0, 200, (8,), generator=_g)
_noise = torch.randint(0, 200, (8, 32), generator=_g)
_fa, _fb = _f0.clone().requires_grad_(), _f0.clone().requires_grad_()
_la = nce_loss(_fa, _idx, _noise, _bank, 0.07, 300.0)
_lb = sk.nce_loss(sk.nce_scores(_fb, _idx, _noise, _bank, 0.07), 300.0, 200)
assert torch.isclose(_la, _lb, rtol=1e-4), "differs from the library's NCE loss"
_la.backward(); _lb.backward()
assert _fa.grad is not None and torch.allclose(_fa.grad, _fb.grad, atol=1e-4), "wrong gradient with respect to f"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# closed form: every bank vector equals f and Z = N e^{1/tau}, so P = 1/N and h = 1/(1+m)
_n, _m = 40, 7
_v = F.normalize(torch.ones(1, 4), dim=1)
_bank = _v.repeat(_n, 1)
_val = float(nce_loss(_v.repeat(3, 1), torch.arange(3), torch.zeros(3, _m, dtype=torch.long), _bank, 0.2, _n * math.exp(1 / 0.2)))
assert abs(_val - (math.log(1 + _m) + _m * -math.log(_m / (1 + _m)))) < 1e-4, "wrong value when P(j|f) = 1/N for every j"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: mc_normalizer
# points: 3

# %% [markdown]
# **Exercise 2 — the Monte-Carlo normaliser [3 points].** $Z = \sum_{j=1}^N \exp(v_j^\top f/\tau)$
# costs N dot products. Estimate it from noise samples drawn uniformly: implement
# `mc_normalizer(f, noise, bank, tau)` returning one float,
# $\hat Z = N \cdot \operatorname{mean}_{b, j} \exp(v_{\text{noise}[b, j]}^\top f_b / \tau)$, the
# mean taken over the whole batch and all its noise samples (the paper computes it once,
# on the first batch, and keeps it fixed).

# %% [raw]
# # BEGIN SOLUTION

# %%
def mc_normalizer(f, noise, bank, tau):
    # BEGIN SOLUTION
    scores = torch.exp(torch.einsum("bd,bmd->bm", f.double(), bank[noise].double()) / tau)
    return float(scores.mean() * len(bank))
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_g = torch.Generator().manual_seed(0)
_bank = F.normalize(torch.randn(20, 4, generator=_g), dim=1)
_z = mc_normalizer(_bank[:2], torch.randint(0, 20, (2, 5), generator=_g), _bank, 0.5)
assert isinstance(float(_z), float) and float(_z) > 0, "return one positive number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# every index exactly once for each of two images: the estimate is the mean of their exact Z (sk.exact_normalizer)
_g = torch.Generator().manual_seed(1)
_bank = F.normalize(torch.randn(300, 8, generator=_g), dim=1)
_f = F.normalize(torch.randn(2, 8, generator=_g), dim=1)
_exact = float(sk.exact_normalizer(_f, _bank, 0.1).mean())
assert abs(float(mc_normalizer(_f, torch.arange(300).repeat(2, 1), _bank, 0.1)) - _exact) < 1e-4 * _exact, \
    "with every index once for each image, the estimate must be the mean of their exact Z"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# a batch: the mean spans every image and every noise sample, as the library's estimate
_g = torch.Generator().manual_seed(2)
_bank = F.normalize(torch.randn(1000, 8, generator=_g), dim=1)
_f = F.normalize(torch.randn(6, 8, generator=_g), dim=1)
_noise = torch.randint(0, 1000, (6, 50), generator=_g)
_lib = sk.monte_carlo_normalizer(sk.nce_scores(_f, torch.zeros(6, dtype=torch.long), _noise, _bank, 0.07)[:, 1:], 1000)
assert abs(float(mc_normalizer(_f, _noise, _bank, 0.07)) - _lib) < 1e-4 * _lib, "not N times the mean over the batch's noise scores"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: noise_mass
# points: 1

# %% [markdown]
# **Exercise 3 — the noise mass [1 point].** With $N = 50{,}000$ images and $m = 4096$
# noise samples, what is $m P_n(j)$, the term added to $P(j \mid f)$ in the denominator of
# $h$? Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
noise_mass = 4096 / 50_000  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(noise_mass, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# read off the library's loss: with P(j|f) = mass for every sample, h = 1/2 and the loss is (1 + m) ln 2
_N, _m = 50_000, 4096
_scores = torch.full((1, 1 + _m), noise_mass, dtype=torch.float64)
assert abs(float(sk.nce_loss(_scores, 1.0, _N)) - (1 + _m) * math.log(2)) < 1e-3, "not m P_n"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: bank_memory
# points: 1

# %% [markdown]
# **Exercise 4 — how long the bank remembers [1 point].** The bank update is
# $v_i \leftarrow \mu v_i + (1-\mu) f_i$ (then normalised), once per epoch. With
# $\mu = 0.5$, what weight does $v_i$ give to the feature written three epochs before the
# latest one (ignore the normalisation)? Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
weight_3 = 0.5 * 0.5 ** 3  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(weight_3, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# unrolled: five updates with one-hot features, no normalisation; coefficient of the update 3 before the last
_mu, _v = 0.5, torch.zeros(5, dtype=torch.float64)
for _t in range(5):
    _v = _mu * _v + (1 - _mu) * torch.eye(5, dtype=torch.float64)[_t]
assert abs(weight_3 - float(_v[4 - 3])) < 1e-9, "not the weight of the feature from three epochs before"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
