# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 04's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 04_deepcluster
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
# name: pca_whiten_l2
# points: 4

# %% [markdown]
# **Exercise 1 — PCA-whitening and L2 [4 points].** Implement DeepCluster's feature
# pipeline `pca_whiten_l2(f, dim, eps)`: centre the rows of `f` (N, D) with their mean, take
# the covariance $\Sigma = \frac1N \sum_i (f_i - \mu)(f_i - \mu)^\top$ (in float64), project
# on its `dim` leading eigenvectors, divide coordinate $j$ by $\sqrt{\lambda_j + \varepsilon}$
# (a negative rounding error in $\lambda_j$ counts as 0), then L2-normalise each row. Return
# an (N, dim) float32 tensor. (`torch.linalg.eigh`; no `sk.fit_pca`.)

# %% [raw]
# # BEGIN SOLUTION

# %%
def pca_whiten_l2(f, dim, eps=1e-5):
    # BEGIN SOLUTION
    x = f.double()
    xc = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(xc.T @ xc / len(x))
    order = torch.argsort(evals, descending=True)[:dim]
    y = xc @ evecs[:, order] / torch.sqrt(evals[order].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=1).float()
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_f = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
_z = pca_whiten_l2(_f, 3)
assert tuple(_z.shape) == (40, 3) and _z.dtype == torch.float32, "return an (N, dim) float32 tensor"
assert torch.allclose(_z.norm(dim=1), torch.ones(40), atol=1e-5), "rows must have unit norm"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# eigenvectors have arbitrary signs, so compare Gram matrices (z_i . z_j), which do not see them;
# the reference is numpy's SVD of the centred data (singular values^2 / N are the eigenvalues)
import numpy as _np
def _ref(f, dim, eps):
    x = f.double().numpy()
    xc = x - x.mean(0)
    _, s, vt = _np.linalg.svd(xc, full_matrices=False)
    y = xc @ vt[:dim].T / _np.sqrt(s[:dim] ** 2 / len(x) + eps)
    y = y / _np.linalg.norm(y, axis=1, keepdims=True)
    return torch.from_numpy(y @ y.T)
_g = torch.Generator().manual_seed(1)
_f = torch.randn(200, 12, generator=_g) @ torch.randn(12, 12, generator=_g) + 3.0
for _d in (2, 5, 12):
    _z = pca_whiten_l2(_f, _d).double()
    assert torch.allclose(_z @ _z.T, _ref(_f, _d, 1e-5), atol=1e-4), f"wrong features for dim = {_d}"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the whitened coordinates (before L2) have variance lambda / (lambda + eps): with a large eps the
# small directions are damped; compare with sk.fit_pca, another implementation
_g = torch.Generator().manual_seed(2)
_f = torch.randn(300, 8, generator=_g) * torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.1, 0.01, 0.001])
_z = pca_whiten_l2(_f, 8, eps=0.05).double()
_lib = sk.fit_pca(_f, 8, eps=0.05).transform(_f).double()
assert torch.allclose(_z @ _z.T, _lib @ _lib.T, atol=1e-4), "eps must be added to every eigenvalue (eps = 0.05)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# fewer images than dimensions (a rank-deficient covariance, eigenvalues ~0 or slightly < 0)
_g = torch.Generator().manual_seed(3)
_f = torch.randn(5, 20, generator=_g)
_z = pca_whiten_l2(_f, 10).double()
assert torch.isfinite(_z).all(), "inf/NaN when N < D (clamp negative eigenvalues at 0)"
_lib = sk.fit_pca(_f, 10).transform(_f).double()
assert torch.allclose(_z @ _z.T, _lib @ _lib.T, atol=1e-3), "wrong features when N < D"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: uniform_sampler
# points: 4

# %% [markdown]
# **Exercise 2 — sampling uniformly over clusters [4 points].** DeepCluster draws an
# epoch's images so that every *non-empty* cluster contributes equally, whatever its size.
# Implement `uniform_sampler(labels, num_samples, generator)`: `labels` (N,) are cluster
# indices (some indices in $0..K-1$ may be unused: empty clusters); return `num_samples`
# image indices (a long tensor), shuffled, in which each of the $K'$ non-empty clusters
# appears $\lfloor n/K' \rfloor$ or $\lceil n/K' \rceil$ times ($n$ = `num_samples`), drawn
# from its own members without replacement while it has enough of them and with
# replacement otherwise. Use `generator` for every random choice. (This is stricter than
# `sk.uniform_cluster_sampler`, which follows the official code: it draws $\lfloor n/K'
# \rfloor + 1$ images from every cluster, shuffles them and keeps the first $n$, so a cluster
# can end a few draws short of $\lfloor n/K' \rfloor$.)

# %% [raw]
# # BEGIN SOLUTION

# %%
def uniform_sampler(labels, num_samples, generator=None):
    # BEGIN SOLUTION
    clusters = torch.unique(labels)
    base, extra = divmod(num_samples, len(clusters))
    bonus = set(torch.randperm(len(clusters), generator=generator)[:extra].tolist())
    picks = []
    for j, c in enumerate(clusters.tolist()):
        members = torch.nonzero(labels == c).flatten()
        n = base + (j in bonus)
        if len(members) >= n:
            picks.append(members[torch.randperm(len(members), generator=generator)[:n]])
        else:
            picks.append(members[torch.randint(len(members), (n,), generator=generator)])
    idx = torch.cat(picks)
    return idx[torch.randperm(len(idx), generator=generator)]
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_labels = torch.arange(40) % 4
_idx = uniform_sampler(_labels, 40, torch.Generator().manual_seed(0))
assert torch.is_tensor(_idx) and len(_idx) == 40, "return num_samples indices"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# very unequal clusters and two empty ones (5 and 7): counts per non-empty cluster are n/K' +- 1
def _check_counts(labels, idx, n):
    assert len(idx) == n, f"{len(idx)} indices instead of {n}"
    assert idx.dtype == torch.long and int(idx.min()) >= 0 and int(idx.max()) < len(labels), "not valid image indices"
    used = torch.unique(labels)
    counts = torch.bincount(labels[idx], minlength=int(labels.max()) + 1)[used]
    lo, hi = n // len(used), -(-n // len(used))
    assert int(counts.min()) >= lo and int(counts.max()) <= hi, f"cluster counts {counts.tolist()} not all in [{lo}, {hi}]"
_labels = torch.cat([torch.zeros(500), torch.ones(3), torch.full((40,), 2), torch.full((10,), 3),
                     torch.full((1,), 4), torch.full((60,), 6)]).long()
for _n, _s in ((600, 0), (601, 1), (37, 2)):
    _check_counts(_labels, uniform_sampler(_labels, _n, torch.Generator().manual_seed(_s)), _n)

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# without replacement for a large cluster, with replacement for a small one (cluster 1 is empty); shuffled
def _check_counts(labels, idx, n):
    assert len(idx) == n, f"{len(idx)} indices instead of {n}"
    assert idx.dtype == torch.long and int(idx.min()) >= 0 and int(idx.max()) < len(labels), "not valid image indices"
    used = torch.unique(labels)
    counts = torch.bincount(labels[idx], minlength=int(labels.max()) + 1)[used]
    lo, hi = n // len(used), -(-n // len(used))
    assert int(counts.min()) >= lo and int(counts.max()) <= hi, f"cluster counts {counts.tolist()} not all in [{lo}, {hi}]"
_labels = torch.cat([torch.zeros(500), torch.full((2,), 2)]).long()
_idx = uniform_sampler(_labels, 101, torch.Generator().manual_seed(4))
_check_counts(_labels, _idx, 101)
_big = _idx[_labels[_idx] == 0]
assert len(torch.unique(_big)) == len(_big), "a cluster with enough members is drawn without replacement"
assert set(_idx[_labels[_idx] == 2].tolist()) <= {500, 501}, "the small cluster is drawn from its own members"
assert not torch.equal(_labels[_idx], _labels[_idx].sort().values), "the indices must be shuffled"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the generator decides: same seed, same draw; another seed, another draw (even cluster indices only)
def _check_counts(labels, idx, n):
    assert len(idx) == n, f"{len(idx)} indices instead of {n}"
    assert idx.dtype == torch.long and int(idx.min()) >= 0 and int(idx.max()) < len(labels), "not valid image indices"
    used = torch.unique(labels)
    counts = torch.bincount(labels[idx], minlength=int(labels.max()) + 1)[used]
    lo, hi = n // len(used), -(-n // len(used))
    assert int(counts.min()) >= lo and int(counts.max()) <= hi, f"cluster counts {counts.tolist()} not all in [{lo}, {hi}]"
_labels = torch.randint(0, 10, (300,), generator=torch.Generator().manual_seed(5)) * 2
_a = uniform_sampler(_labels, 203, torch.Generator().manual_seed(6))
_b = uniform_sampler(_labels, 203, torch.Generator().manual_seed(6))
_c = uniform_sampler(_labels, 203, torch.Generator().manual_seed(7))
_check_counts(_labels, _a, 203)
assert torch.equal(_a, _b) and not torch.equal(_a, _c), "use the generator for every random choice"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: whitened_variance
# points: 1

# %% [markdown]
# **Exercise 3 — what whitening does to a tiny direction [1 point].** `sk.fit_pca(f, d)`
# divides coordinate $j$ by $\sqrt{\lambda_j + \varepsilon}$ with $\varepsilon = 10^{-5}$.
# Suppose one kept direction, in the tail of a steep spectrum (a network's feature
# eigenvalues often span several orders of magnitude), has eigenvalue $\lambda = 4\cdot10^{-6}$. What is the variance of such a whitened coordinate (before the L2 step)? Give the number
# (3 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
tail_variance = 4e-6 / (4e-6 + 1e-5)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(tail_variance, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# measured: data with exactly this eigenvalue, whitened by sk.fit_pca without L2
_x = torch.zeros(20000, 2, dtype=torch.float64)
_x[:, 0] = torch.randn(20000, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
_x[:, 1] = torch.where(torch.arange(20000) % 2 == 0, 1.0, -1.0).double() * math.sqrt(4e-6)
_y = sk.fit_pca(_x, 2).transform(_x, l2=False).double()
assert abs(tail_variance - float(_y[:, 1].pow(2).mean())) < 2e-3, "not the variance of the whitened tail coordinate"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: draws_per_cluster
# points: 1

# %% [markdown]
# **Exercise 4 — draws per cluster [1 point].** k-means on 10,000 images with $K = 100$
# leaves 20 clusters empty. An epoch draws 10,000 images uniformly over the clusters. About
# how many draws does each non-empty cluster get? Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
draws = 10_000 / 80  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(draws, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# counted on the library's sampler
_labels = torch.arange(10_000) % 80
_idx = sk.uniform_cluster_sampler(_labels, 10_000, torch.Generator().manual_seed(9))
assert abs(draws - torch.bincount(_labels[_idx]).float().mean().item()) <= 1, "not the draws per non-empty cluster"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
