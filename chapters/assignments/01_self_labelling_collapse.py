# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 01's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 01_self_labelling_collapse
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
# name: first_collapse
# points: 4

# %% [markdown]
# **Exercise 1 — detect collapse from a label history [4 points].** A self-labelling run
# records its hard labels after every relabelling: `history` is a list of (N,) int tensors
# with values in $0..K-1$. Implement `first_collapse(history, k, threshold)`: the index of
# the first labelling whose *normalised* cluster-size entropy
# $H(\text{sizes}) / \ln K$ (with $0 \ln 0 = 0$) is below `threshold`, or `None` if there is
# none (an empty history included). Count sizes over all $K$ clusters, empty ones too.

# %% [raw]
# # BEGIN SOLUTION

# %%
def first_collapse(history, k, threshold=0.5):
    # BEGIN SOLUTION
    for step, labels in enumerate(history):
        p = torch.bincount(labels.long(), minlength=k).double() / len(labels)
        h = -torch.special.xlogy(p, p).sum().item()
        if h / math.log(k) < threshold:
            return step
    return None
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_hist = [torch.arange(100) % 10, torch.zeros(100, dtype=torch.long)]
assert first_collapse(_hist, 10, 0.5) == 1, "all images in one cluster is a collapse"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# a run that shrinks from 8 used clusters to 1; the reference is sk.cluster_report's normalised entropy
_g = torch.Generator().manual_seed(0)
_hist = [torch.randint(0, u, (400,), generator=_g) for u in (8, 8, 6, 4, 3, 2, 1)]
_ents = [sk.cluster_report(h, 8)["normalized_entropy"] for h in _hist]
for _thr in (0.95, 0.8, 0.6, 0.4, 0.1, 1e-9):
    _want = next((i for i, e in enumerate(_ents) if e < _thr), None)
    assert first_collapse(_hist, 8, _thr) == _want, f"wrong step for threshold {_thr}"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# no collapse at all, an empty history, collapse at the very first step
_bal = [torch.arange(60) % 6 for _ in range(5)]
assert first_collapse(_bal, 6, 0.9) is None, "a balanced run never collapses: return None"
assert first_collapse([], 6, 0.9) is None, "an empty history: return None"
assert first_collapse([torch.zeros(30, dtype=torch.long)] + _bal, 6, 0.5) == 0, "collapse at step 0"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# empty clusters count: 2 used clusters out of K = 4 (H / ln 4 = 0.5) vs out of K = 2 (H / ln 2 = 1)
_two = [torch.arange(50) % 2]
assert first_collapse(_two, 4, 0.6) == 0, "sizes over all K clusters: H / ln K with K = 4 is 0.5"
assert first_collapse(_two, 2, 0.6) is None, "with K = 2 the same labelling is perfectly balanced"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: nmi_between_steps
# points: 4

# %% [markdown]
# **Exercise 2 — how much the labels move [4 points].** The training loop's logs also compare
# each labelling with the previous one by their normalised mutual information (`nmi_prev` in a
# run's metrics; chapter 08 plots it). Implement `nmi(a, b)` for
# two hard labellings of the same images: with the joint distribution
# $p(x, y) = n_{xy}/N$ of the contingency table, $I = \sum_{xy} p(x,y) \ln \frac{p(x,y)}{p(x)p(y)}$
# and $\mathrm{NMI} = I / \tfrac12 (H(a) + H(b))$; by convention 1 when both labellings are
# constant and 0 when only one is. Return a float. No `sk.nmi`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def nmi(a, b):
    # BEGIN SOLUTION
    a, b = torch.as_tensor(a).long(), torch.as_tensor(b).long()
    n = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    n.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = n / n.sum()
    pa, pb = p.sum(1), p.sum(0)
    ha, hb = -torch.special.xlogy(pa, pa).sum().item(), -torch.special.xlogy(pb, pb).sum().item()
    if ha == 0 and hb == 0:
        return 1.0
    mi = (torch.special.xlogy(p, p).sum() - torch.special.xlogy(pa, pa).sum() - torch.special.xlogy(pb, pb).sum()).item()
    return max(0.0, mi / (0.5 * (ha + hb)))
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_a = torch.arange(30) % 3
assert abs(float(nmi(_a, (_a + 1) % 3)) - 1.0) < 1e-9, "a renamed labelling has NMI 1"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force: the double sum over the contingency table, in Python floats
def _brute(a, b):
    a, b = a.tolist(), b.tolist()
    N = len(a)
    from collections import Counter
    ca, cb, cab = Counter(a), Counter(b), Counter(zip(a, b))
    mi = sum(n / N * math.log((n / N) / ((ca[x] / N) * (cb[y] / N))) for (x, y), n in cab.items())
    ha = -sum(n / N * math.log(n / N) for n in ca.values())
    hb = -sum(n / N * math.log(n / N) for n in cb.values())
    return mi / (0.5 * (ha + hb))
_g = torch.Generator().manual_seed(1)
for _ka, _kb in ((3, 3), (5, 2), (10, 7)):
    _a = torch.randint(0, _ka, (300,), generator=_g)
    _b = torch.where(torch.rand(300, generator=_g) < 0.5, _a % _kb, torch.randint(0, _kb, (300,), generator=_g))
    assert abs(float(nmi(_a, _b)) - _brute(_a, _b)) < 1e-9, f"wrong NMI ({_ka} vs {_kb} clusters)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# labels with gaps (unused indices) and the library as a second reference
_g = torch.Generator().manual_seed(2)
_a = torch.randint(0, 4, (200,), generator=_g) * 3          # uses 0, 3, 6, 9 only
_b = torch.randint(0, 6, (200,), generator=_g)
assert abs(float(nmi(_a, _b)) - sk.nmi(_a, _b)) < 1e-9, "unused cluster indices must not change the NMI"
assert abs(float(nmi(_b, _a)) - float(nmi(_a, _b))) < 1e-12, "NMI is symmetric"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the conventions: both constant -> 1; one constant -> 0 (no NaN from 0/0 or log 0)
_z = torch.zeros(40, dtype=torch.long)
assert float(nmi(_z, _z)) == 1.0, "two constant labellings: 1 by convention"
_v = float(nmi(_z, torch.arange(40) % 4))
assert not math.isnan(_v) and abs(_v) < 1e-12, "one constant labelling: 0"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: uniform_network_loss
# points: 1

# %% [markdown]
# **Exercise 3 — the loss of a network that ignores its input [1 point].** It outputs the
# uniform distribution over $K = 10$ classes for every image. What is the naive objective
# $E(p, y)$ (the mean cross-entropy) for *any* labelling $y$? Give the number.

# %% [raw]
# # BEGIN SOLUTION

# %%
uniform_loss = math.log(10)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(uniform_loss, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
_y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(3))
assert abs(uniform_loss - torch.nn.functional.cross_entropy(torch.zeros(64, 10), _y).item()) < 1e-4, \
    "not the cross-entropy of a uniform prediction"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: three_survivors
# points: 1

# %% [markdown]
# **Exercise 4 — how collapsed is "three clusters left"? [1 point].** Suppose a toy
# self-labelling run on 600 points with $K = 10$ clusters ended with 3 clusters of 200 (and 7
# empty ones). What is the normalised entropy $H(\text{sizes}) / \ln K$? Give the number (3 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
normalized_entropy = math.log(3) / math.log(10)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(normalized_entropy, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
assert abs(normalized_entropy - sk.cluster_report(torch.arange(600) % 3, 10)["normalized_entropy"]) < 1e-3, \
    "not H / ln K for these sizes"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
