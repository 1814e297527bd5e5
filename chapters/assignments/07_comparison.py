# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 07's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 07_comparison
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

# %% [raw]
# # BEGIN QUESTION
# name: cell_summary
# points: 3

# %% [markdown]
# **Exercise 1 — a table cell from stored runs [3 points].** `lines` is a list of dicts like
# the lines of `runs.jsonl` (keys `method`, `dataset`, `seed`, `knn_acc`, ...). Implement
# `cell_summary(lines, key)`: group the lines by `(dataset, method)` and return a dict
# `{(dataset, method): (mean, std, n)}` of the values of `key` — the mean, the **sample**
# standard deviation (divide by n - 1; 0.0 when n = 1) and the number of runs. Lines whose
# `key` is missing or None do not count. No `sk.results_table`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def cell_summary(lines, key):
    # BEGIN SOLUTION
    groups = {}
    for line in lines:
        if line.get(key) is not None:
            groups.setdefault((line["dataset"], line["method"]), []).append(float(line[key]))
    out = {}
    for cell, values in groups.items():
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        out[cell] = (mean, std, n)
    return out
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_lines = [{"dataset": "c", "method": "m", "seed": s, "knn_acc": v} for s, v in enumerate((40.0, 42.0, 44.0))]
_out = cell_summary(_lines, "knn_acc")
assert isinstance(_out, dict) and set(_out) == {("c", "m")}, "one entry per (dataset, method)"
assert len(_out[("c", "m")]) == 3, "return (mean, std, n)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
import statistics as _st
_g = torch.Generator().manual_seed(0)
_lines = []
for _ds in ("cifar10", "cifar100"):
    for _m, _n in (("sela", 3), ("swav", 5), ("npid", 1)):
        for _s in range(_n):
            _lines.append({"dataset": _ds, "method": _m, "seed": _s, "knn_acc": float(torch.rand(1, generator=_g)) * 50,
                           "nmi": None if _m == "npid" else float(torch.rand(1, generator=_g))})
for _key in ("knn_acc", "nmi"):
    _out = cell_summary(_lines, _key)
    for (_ds, _m), (_mean, _std, _n) in _out.items():
        _vals = [l[_key] for l in _lines if l["dataset"] == _ds and l["method"] == _m and l[_key] is not None]
        assert _n == len(_vals), f"wrong n for {(_ds, _m)}"
        assert abs(_mean - _st.mean(_vals)) < 1e-9, f"wrong mean for {(_ds, _m)}"
        assert abs(_std - (_st.stdev(_vals) if len(_vals) > 1 else 0.0)) < 1e-9, f"not the sample std for {(_ds, _m)}"
    assert ("cifar10", "npid") not in cell_summary(_lines, "nmi"), "lines without a value must not count"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# against the library's table: the same means and standard deviations (rounded to 2 decimals there)
_lines = [{"dataset": "d", "budget": "lab", "method": m, "epochs": 12, "seed": s, "knn_acc": 40.0 + 3 * s + i,
           "linear_acc": 50.0, "wall_s": 10.0, "images_per_s": 1.0, "device": "cpu", "git_sha": "x"}
          for i, m in enumerate(("sela", "swav")) for s in range(3)]
for _row in sk.results_table(_lines):
    _mean, _std, _n = cell_summary(_lines, "knn_acc")[("d", _row["method"])]
    assert abs(_mean - _row["knn_acc"]) < 0.01 and abs(_std - _row["knn_acc_std"]) < 0.01 and _n == _row["seeds"]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: welch
# points: 3

# %% [markdown]
# **Exercise 2 — Welch's t and its degrees of freedom [3 points].** Implement
# `welch(a, b)` for two lists of accuracies (one per seed, at least two each): return
# `(t, df)` with $t = (m_a - m_b)/\sqrt{s_a^2/n_a + s_b^2/n_b}$ (sample standard deviations)
# and the Welch–Satterthwaite degrees of freedom
# $\nu = \dfrac{(s_a^2/n_a + s_b^2/n_b)^2}{\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}$.
# Both as Python floats. No scipy.

# %% [raw]
# # BEGIN SOLUTION

# %%
def welch(a, b):
    # BEGIN SOLUTION
    def stats(x):
        n = len(x)
        m = sum(x) / n
        return m, sum((v - m) ** 2 for v in x) / (n - 1), n
    ma, va, na = stats([float(v) for v in a])
    mb, vb, nb = stats([float(v) for v in b])
    ea, eb = va / na, vb / nb
    t = (ma - mb) / math.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea ** 2 / (na - 1) + eb ** 2 / (nb - 1))
    return t, df
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_t, _df = welch([40.0, 41.0, 42.0], [38.0, 39.0, 40.0])
assert isinstance(_t, float) and isinstance(_df, float), "return two floats"
assert _t > 0, "t is positive when the first list has the larger mean"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
from scipy import stats as _stats
_g = torch.Generator().manual_seed(1)
for _na, _nb in ((3, 3), (2, 5), (6, 4)):
    _a = (torch.randn(_na, generator=_g, dtype=torch.float64) * 2 + 45).tolist()
    _b = (torch.randn(_nb, generator=_g, dtype=torch.float64) * 0.5 + 44).tolist()
    _ref = _stats.ttest_ind(_a, _b, equal_var=False)
    _t, _df = welch(_a, _b)
    assert abs(_t - _ref.statistic) < 1e-9, f"t differs from Welch's test for n = {_na}, {_nb}"
    assert abs(_df - _ref.df) < 1e-9, f"degrees of freedom differ from Welch-Satterthwaite for n = {_na}, {_nb}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: smallest_gap
# points: 1

# %% [markdown]
# **Exercise 3 — the smallest gap that counts [1 point].** Two methods were each run with
# three seeds, and both have a sample standard deviation of exactly 1.0 point. How large must
# the gap between their means be for Welch's $|t|$ to reach 3 (the threshold for a gap that counts)? Give
# the number of points (3 decimals).

# %% [raw]
# # BEGIN SOLUTION

# %%
smallest_gap = 3 * math.sqrt(2 / 3)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(smallest_gap, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
from scipy import stats as _stats
# a gap of exactly that size between two sets of three runs with std 1.0 gives t = 3
_a = [10.0 + smallest_gap - 1.0, 10.0 + smallest_gap, 10.0 + smallest_gap + 1.0]
assert abs(_stats.ttest_ind(_a, [9.0, 10.0, 11.0], equal_var=False).statistic - 3.0) < 1e-3, \
    "with s = 1 on both sides and n = 3, the standard error is sqrt(1/3 + 1/3)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: band_half_width
# points: 1

# %% [markdown]
# **Exercise 4 — the live re-run's band [1 point].** The stored runs of a method reached
# kNN accuracies of 44.0, 44.4 and 44.8 %. A live re-run must land in the band mean ±
# max(3 sample standard deviations, 2.5 points). What is the band's half-width in points?

# %% [raw]
# # BEGIN SOLUTION

# %%
band_half_width = 2.5  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(band_half_width, (int, float)), "give a number"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
import statistics as _st
assert abs(band_half_width - max(3 * _st.stdev([44.0, 44.4, 44.8]), 2.5)) < 1e-6, \
    "three standard deviations are 1.2 points here: the floor of 2.5 points decides"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
