# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 08's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 08_your_own_images
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

# %% [raw]
# # BEGIN QUESTION
# name: square_box
# points: 3

# %% [markdown]
# **Exercise 1 — the centre square [3 points].** Every image is read at `size x size` as
# torchvision's `Resize(size)` followed by `CenterCrop(size)`: the shorter side is resized
# to `size` and the longer one to `int(size * long / short)` (truncated), then the crop's
# left edge is at `int(round((new_w - size) / 2))` and its top edge at
# `int(round((new_h - size) / 2))` (Python's `round`). Implement `square_box(w, h, size)`
# returning `(new_w, new_h, left, top)` for an image `w` pixels wide and `h` high (an image
# that is already `size x size` gives `(size, size, 0, 0)`).

# %% [raw]
# # BEGIN SOLUTION

# %%
def square_box(w, h, size):
    # BEGIN SOLUTION
    if (w, h) == (size, size):
        return size, size, 0, 0
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    return nw, nh, int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert tuple(square_box(32, 32, 32)) == (32, 32, 0, 0), "a square image of the right size stays as it is"
assert tuple(square_box(64, 32, 32)) == (64, 32, 16, 0), "a 64 x 32 image: resized to 64 x 32, cut at x = 16"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# against torchvision's Resize + CenterCrop on random images: the same pixels from the student's box
import numpy as np
import torchvision.transforms as _T
from PIL import Image as _Image

_rng = np.random.default_rng(0)
for _ in range(60):
    _w, _h = (int(v) for v in _rng.integers(10, 300, 2))
    _s = int(_rng.choice([16, 32, 96]))
    _img = _Image.fromarray(_rng.integers(0, 256, (_h, _w, 3), dtype=np.uint8))
    _nw, _nh, _l, _t = square_box(_w, _h, _s)
    _mine = np.asarray(_img.resize((_nw, _nh), _Image.BILINEAR).crop((_l, _t, _l + _s, _t + _s)))
    _ref = np.asarray(_T.CenterCrop(_s)(_T.Resize(_s)(_img)))
    assert _mine.shape == _ref.shape and (_mine == _ref).all(), f"differs from torchvision for a {_w} x {_h} image at {_s}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: nearest_training
# points: 3

# %% [markdown]
# **Exercise 2 — the nearest training images [3 points].** `python -m sslkit.predict` lists,
# for every new image, the training images whose features are most similar to its own.
# Implement `nearest_training(query, bank, k)`: `query` (N, D) and `bank` (M, D) features,
# returning the (N, k) indices into `bank` of the `k` rows with the largest cosine
# similarity to each query row, most similar first. No `sk` function and no loop over the
# images.

# %% [raw]
# # BEGIN SOLUTION

# %%
def nearest_training(query, bank, k):
    # BEGIN SOLUTION
    sims = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    return sims.topk(k, dim=1).indices
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
assert nearest_training(torch.tensor([[2.0, 0.1]]), _bank, 2).tolist() == [[0, 2]], "nearest first, by the angle"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force in float64, one query at a time (random features: no ties)
_g = torch.Generator().manual_seed(0)
for _n, _m, _d, _k in ((5, 40, 8, 3), (1, 7, 3, 7), (12, 100, 16, 1)):
    _q, _b = torch.randn(_n, _d, generator=_g), torch.randn(_m, _d, generator=_g) * 3
    _got = torch.as_tensor(nearest_training(_q, _b, _k))
    assert _got.shape == (_n, _k), f"return (N, k) indices, got {tuple(_got.shape)}"
    for _i in range(_n):
        _cos = [float(_q[_i].double() @ _b[_j].double() / (_q[_i].double().norm() * _b[_j].double().norm()))
                for _j in range(_m)]
        _want = sorted(range(_m), key=lambda j: -_cos[j])[:_k]
        assert _got[_i].tolist() == _want, f"query {_i}: {_got[_i].tolist()} instead of {_want}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: cluster_purity
# points: 2

# %% [markdown]
# **Exercise 3 — how pure is a cluster [2 points].** When the true labels of clustered
# images are known, a cluster is as good as the share of its images that carry its most
# frequent label. Implement `cluster_purity(clusters, labels)` returning a dict
# `{cluster: (label, purity)}` for every cluster that occurs: its most frequent label (the
# smallest label on a tie) and the fraction of its images with that label. Both arguments are
# int tensors of the same length.

# %% [raw]
# # BEGIN SOLUTION

# %%
def cluster_purity(clusters, labels):
    # BEGIN SOLUTION
    out = {}
    for c in torch.unique(clusters).tolist():
        member = labels[clusters == c]
        counts = torch.bincount(member)
        best = int(counts.argmax())
        out[c] = (best, float(counts[best]) / len(member))
    return out
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_p = cluster_purity(torch.tensor([0, 0, 0, 2]), torch.tensor([1, 1, 3, 0]))
assert set(_p) == {0, 2} and _p[0][0] == 1 and abs(_p[0][1] - 2 / 3) < 1e-9 and _p[2] == (0, 1.0), \
    "expected {0: (1, 2/3), 2: (0, 1.0)}: cluster 0 holds labels 1, 1, 3 and cluster 2 the label 0"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the images' weighted mean purity is the majority-vote accuracy of the library (another implementation)
_g = torch.Generator().manual_seed(3)
for _ in range(5):
    _c = torch.randint(0, 9, (300,), generator=_g)
    _y = torch.randint(0, 5, (300,), generator=_g)
    _pur = cluster_purity(_c, _y)
    _sizes = torch.bincount(_c)
    _acc = sum(_pur[c][1] * int(_sizes[c]) for c in _pur) / 300 * 100
    assert abs(_acc - sk.majority_accuracy(_c, _y)) < 1e-6, "the purities do not add up to the majority accuracy"
# ties go to the smallest label
assert cluster_purity(torch.tensor([4, 4]), torch.tensor([7, 2]))[4][0] == 2, "on a tie, the smallest label"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: stream_or_not
# points: 1

# %% [markdown]
# **Exercise 4 — in memory or streamed [1 point].** A run keeps its training images in memory
# as uint8 tensors of 3 x S x S bytes each, and streams them (decodes them in worker processes
# at every pass) above `--stream_above_gb=4` GB ($10^9$ bytes). Up to how many images (the
# largest whole number) does a run at S = 224 pixels keep in memory? Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
largest_in_memory = int(4e9 // (3 * 224 * 224))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(largest_in_memory, int), "give a whole number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the run's own rule (sslkit.data: stream when n * 3 * S^2 > stream_above_gb * 1e9), at the edge
from sslkit.data import _streams

_cfg = sk.TrainConfig(method="sela", image_size=224, stream_above_gb=4.0)
assert not _streams(_cfg, largest_in_memory) and _streams(_cfg, largest_in_memory + 1), \
    "not the largest number of images that stays in memory"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
