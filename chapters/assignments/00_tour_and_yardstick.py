# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 00's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 00_tour_and_yardstick
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
# name: weighted_knn
# points: 4

# %% [markdown]
# **Exercise 1 — the weighted kNN vote [4 points].** Implement the yardstick's classifier
# (Wu et al. 2018) `weighted_knn(train_f, train_y, test_f, k, tau, num_classes)`: L2-normalise
# the features, take each test feature's `k` most cosine-similar training features (all of
# them if there are fewer than `k`), give neighbour $j$ the weight $\exp(s_j / \tau)$, sum the
# weights per class and predict the class with the largest sum (on a tie, the smallest
# class index). Return the predictions, an int64 tensor. No `sk.knn_predict`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    # BEGIN SOLUTION
    bank = F.normalize(train_f.double(), dim=1)
    q = F.normalize(test_f.double(), dim=1)
    sim, idx = (q @ bank.T).topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(q), num_classes, dtype=torch.float64)
    votes.scatter_add_(1, train_y[idx].long(), torch.exp(sim / tau))
    return votes.argmax(1)
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_g = torch.Generator().manual_seed(0)
_pred = weighted_knn(torch.randn(30, 5, generator=_g), torch.arange(30) % 3, torch.randn(4, 5, generator=_g), 5, 0.1, 3)
assert torch.is_tensor(_pred) and tuple(_pred.shape) == (4,) and _pred.dtype == torch.int64, "return (n_test,) int64 predictions"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force in Python: sort the similarities, add up the weights class by class
def _brute(train_f, train_y, test_f, k, tau, num_classes):
    out = []
    for q in test_f:
        sims = sorted(((float(F.cosine_similarity(q.double(), t.double(), dim=0)), int(y)) for t, y in zip(train_f, train_y)),
                      reverse=True)[:k]
        votes = [0.0] * num_classes
        for s, y in sims:
            votes[y] += math.exp(s / tau)
        out.append(max(range(num_classes), key=lambda c: (votes[c], -c)))
    return torch.tensor(out)
_g = torch.Generator().manual_seed(1)
for _k, _tau, _C in ((1, 0.1, 4), (7, 0.07, 5), (20, 1.0, 3)):
    _tr = torch.randn(60, 8, generator=_g) * torch.rand(60, 1, generator=_g) * 10  # not unit norm
    _y = torch.randint(0, _C, (60,), generator=_g)
    _te = torch.randn(15, 8, generator=_g)
    assert torch.equal(weighted_knn(_tr, _y, _te, _k, _tau, _C), _brute(_tr, _y, _te, _k, _tau, _C)), \
        f"wrong predictions for k={_k}, tau={_tau} (are the features L2-normalised?)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# more neighbours asked than training points; a class that never occurs; against sk.knn_predict
_g = torch.Generator().manual_seed(2)
_tr, _te = torch.randn(12, 6, generator=_g), torch.randn(30, 6, generator=_g)
_y = torch.tensor([0, 0, 2, 2, 2, 3, 3, 0, 2, 3, 0, 2])
assert torch.equal(weighted_knn(_tr, _y, _te, 50, 0.1, 5), sk.knn_predict(_tr, _y, _te, k=50, temperature=0.1, num_classes=5)), \
    "wrong predictions with k > number of training points"
_tr, _te = torch.randn(500, 16, generator=_g), torch.randn(40, 16, generator=_g)
_y = torch.randint(0, 10, (500,), generator=_g)
for _k, _tau in ((200, 0.1), (5, 1.0)):
    assert torch.equal(weighted_knn(_tr, _y, _te, _k, _tau, 10), sk.knn_predict(_tr, _y, _te, k=_k, temperature=_tau, num_classes=10)), \
        f"differs from sk.knn_predict (k={_k}, tau={_tau})"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# a tie: two neighbours at the same similarity, of classes 2 and 1 -> the smaller class index wins
_tr = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
_y = torch.tensor([2, 1])
_te = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
assert weighted_knn(_tr, _y, _te, 2, 0.1, 3).tolist() == [1, 1], "on a tie the smallest class index wins"
# exactly k neighbours vote: the nearest is of class 1, the next two of class 0 (similar weights, tau = 1)
_ang = torch.tensor([0.10, 0.11, 0.12, 0.50])
_tr, _y = torch.stack([_ang.cos(), _ang.sin()], 1), torch.tensor([1, 0, 0, 2])
_votes = [weighted_knn(_tr, _y, torch.tensor([[1.0, 0.0]]), _k, 1.0, 3).item() for _k in (1, 2, 3)]
assert _votes == [1, 1, 0], f"with k = 1, 2, 3 the vote must be class 1, 1, 0, got {_votes}: use exactly k neighbours"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: hungarian_accuracy
# points: 3

# %% [markdown]
# **Exercise 2 — accuracy of a clustering [3 points].** Implement
# `hungarian_accuracy(pred, true)`: the fraction (in %) of images whose cluster, mapped to a
# class by the best *one-to-one* map from clusters to classes, is their class. Clusters
# left without a class (more clusters than classes) count as wrong. Build the
# cluster-by-class count matrix and use `scipy.optimize.linear_sum_assignment`.
# No `sk.hungarian_accuracy`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def hungarian_accuracy(pred, true):
    # BEGIN SOLUTION
    from scipy.optimize import linear_sum_assignment
    pred, true = torch.as_tensor(pred).long(), torch.as_tensor(true).long()
    counts = torch.zeros(int(pred.max()) + 1, int(true.max()) + 1, dtype=torch.float64)
    counts.index_put_((pred, true), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return 100.0 * float(counts[rows, cols].sum()) / len(pred)
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert abs(float(hungarian_accuracy(torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0, 1, 1]))) - 100.0) < 1e-9, \
    "a renamed perfect clustering scores 100"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force over every one-to-one map (permutations), random labellings, as many clusters as classes
import itertools as _it
def _brute(pred, true):
    kp, kt = int(pred.max()) + 1, int(true.max()) + 1
    best = 0
    for perm in _it.permutations(range(max(kp, kt)), kp):
        best = max(best, sum(int(perm[int(p)] == int(t)) for p, t in zip(pred, true)))
    return 100.0 * best / len(pred)
_g = torch.Generator().manual_seed(3)
for _ in range(3):
    _t = torch.randint(0, 4, (40,), generator=_g)
    _p = torch.where(torch.rand(40, generator=_g) < 0.6, (_t + 1) % 4, torch.randint(0, 4, (40,), generator=_g))
    assert abs(float(hungarian_accuracy(_p, _t)) - _brute(_p, _t)) < 1e-9, "not the best one-to-one matching"
# clusters unrelated to the classes: several clusters share a majority class, and only one of them may take it
_t, _p = torch.randint(0, 4, (40,), generator=_g), torch.randint(0, 4, (40,), generator=_g)
assert abs(float(hungarian_accuracy(_p, _t)) - _brute(_p, _t)) < 1e-9, "not the best one-to-one matching (each class to one cluster)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# more clusters than classes (6 vs 3) and fewer (2 vs 4): unmatched clusters or classes count as wrong
import itertools as _it
def _brute(pred, true):
    kp, kt = int(pred.max()) + 1, int(true.max()) + 1
    best = 0
    for perm in _it.permutations(range(max(kp, kt)), kp):
        best = max(best, sum(int(perm[int(p)] == int(t)) for p, t in zip(pred, true)))
    return 100.0 * best / len(pred)
_g = torch.Generator().manual_seed(4)
_t = torch.randint(0, 3, (50,), generator=_g)
_p = (_t * 2 + torch.randint(0, 2, (50,), generator=_g)) % 6
assert abs(float(hungarian_accuracy(_p, _t)) - _brute(_p, _t)) < 1e-9, "wrong with more clusters than classes"
_t = torch.randint(0, 4, (50,), generator=_g)
_p = _t % 2
assert abs(float(hungarian_accuracy(_p, _t)) - _brute(_p, _t)) < 1e-9, "wrong with fewer clusters than classes"
assert abs(float(hungarian_accuracy(_p, _t)) - sk.hungarian_accuracy(_p, _t)) < 1e-9, "differs from sk.hungarian_accuracy"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: size_entropy
# points: 1

# %% [markdown]
# **Exercise 3 — entropy of the cluster sizes [1 point].** 10,000 images fall into 10
# clusters of sizes 5,500, 500, 500, ..., 500. What is the entropy of the cluster sizes, in
# nats (compute it by hand from $H = -\sum_k p_k \ln p_k$)? Give the number (3 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
size_entropy = -(0.55 * math.log(0.55) + 9 * 0.05 * math.log(0.05))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(size_entropy, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
_labels = torch.cat([torch.zeros(5500)] + [torch.full((500,), k) for k in range(1, 10)]).long()
assert abs(size_entropy - sk.cluster_report(_labels, 10)["entropy"]) < 1e-3, "not the entropy of these cluster sizes"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: nmi_one_cluster
# points: 1

# %% [markdown]
# **Exercise 4 — NMI of a collapsed clustering [1 point].** A clustering puts all 2,000
# lab test images into one cluster. The test set has 10 classes of 200 images. What is the
# NMI of this clustering with the classes? Think about what one cluster tells you about
# the class. Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
nmi_collapsed = 0.0  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(nmi_collapsed, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
assert abs(nmi_collapsed - sk.nmi(torch.zeros(2000, dtype=torch.long), torch.arange(2000) % 10)) < 1e-6, \
    "one cluster carries no information about the class"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise 5 (open, not graded).** In the book's chapter 00 notebook
# (`chapters/00_tour_and_yardstick.ipynb`), set `DATASET = "cifar100"` and re-run it. Which
# baseline loses the most accuracy relative to chance, and why?
