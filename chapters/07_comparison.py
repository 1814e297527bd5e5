# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 07 — The four methods side by side
#
# Chapters 03–06 each trained one method once, live, on the lab subset. One run says little
# about which method is better: whether a gap between two methods means anything depends on
# how far a result moves from one seed to the next, which one run cannot tell. This chapter reads runs
# that were trained beforehand — every method, the same backbone, the same budgets, the same
# evaluation, on CIFAR-10 and CIFAR-100 with three seeds each at the lab budget, and on
# CIFAR-10 one 100-epoch run per method (the table counts the seeds and marks a cell with one
# seed as a single run) — and asks what they do and do not show.
#
# **Learning goals.** After this chapter you can
# 1. run a grid of experiments with `python -m sslkit.sweep` and read its stored results;
# 2. report a result as mean ± standard deviation over seeds and tell a difference from
#    noise (Welch's t statistic);
# 3. compare methods by accuracy *and* by wall-clock, and by how their clusters relate to
#    the classes (which methods find the classes, which split them);
# 4. re-check a stored number by re-running one configuration live.
#
# **Where the numbers come from.** The stored file `chapters/results/runs.jsonl` holds one
# line per run: method, data set, budget, seed, kNN and linear-probe accuracy, the
# clustering scores of the method's clusters and of a k-means with K = classes (fitted on the
# training images' features, scored on the test images), wall-clock, device, the git commit of the code, the per-epoch kNN curve and the
# run's whole config. The lab lines were written by
#
# ```bash
# python -m sslkit.sweep run --datasets cifar10 cifar100 --seeds 0 1 2 --budget lab
# ```
#
# The sweep trains each cell through `python -m sslkit.train` (the code every chapter uses),
# skips finished runs and resumes killed ones; the 100-epoch runs come from the command of
# section 6, the two SwAV variants from chapter 05's commands. The **lab** budget trains each
# method's `lab` preset as it is: sized for about four minutes on 2 CPU cores each (section 3
# prints the times; the presets set the epochs each method fits in that time: a SwAV epoch
# computes two views of every image, an NPID epoch one), on the lab subset (10,000 training
# and 2,000 test images, balanced over the classes), the lab ConvNet, in the presets'
# precision `auto` (bf16 where the CPU does bf16 in hardware). The **long** budget trains the
# same presets for 100 epochs. `pixels` are the standardised pixels and `random` the untrained
# ConvNet (the floors), `supervised` the same network trained on the labels (the ceiling). All
# lines come from one commit of the code (printed below, with the epochs and precision of
# every cell). Any stored line is re-run by `python -m sslkit.sweep rerun N` (from its stored
# config).
#
# Besides CIFAR-10, the file holds the same lab grid on **CIFAR-100** (the CIFAR-10 presets
# run unchanged, not re-tuned for 100 classes; three seeds of every method and baseline) and,
# on CIFAR-10 only, one `long` run per method. Sections 1-3, section 4's k-means comparison
# and section 8 show both data sets; section 2's SwAV variants, section 4's per-class
# pictures, section 5's UMAPs, section 6's 100-epoch runs and section 7's live re-run use
# CIFAR-10. The cell below prints
# what the file holds, apart from chapter 05's two SwAV variants, hard codes (each code
# rounded to one-hot) and multi-crop (2 + 4 crops), three seeds each: six runs this
# chapter's tables leave out; section 2 compares them with the methods on CIFAR-10; the
# README's table lists both (three seeds each).

# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
DATASET = "cifar10"   # the live re-run's data (section 7): "cifar100" re-checks a CIFAR-100 cell
RESULTS = next(p for p in (Path("results/runs.jsonl"), Path("chapters/results/runs.jsonl")) if p.exists())

all_lines = sk.read_results(RESULTS)
runs = [r for r in all_lines if not r.get("variant")]  # each method as its preset defines it
table = sk.results_table(runs)
SSL = [m for m, cls in sk.METHODS.items() if not cls.uses_labels]   # the self-supervised methods
NAMES = {"pixels": "pixels", "random": "random init", "supervised": "supervised",
         **{m: sk.METHODS[m].title.split(" (")[0] for m in SSL}}
COLOUR = {"supervised": "black", **{m: f"C{i}" for i, m in enumerate(SSL)}}   # one colour per method, every figure
datasets = sorted({r["dataset"] for r in runs})
trained = [r for r in runs if r["epochs"]]
epochs_of = {(r["dataset"], r["budget"], r["method"]): r["epochs"] for r in trained}
precision_of = sorted({r.get("precision") or r["config"]["precision"] for r in trained})
shas = sorted({r["git_sha"] for r in all_lines})
print(f"{len(runs)} stored runs (of {len(all_lines)} in {RESULTS}; chapter 05's {len(all_lines) - len(runs)} SwAV variant "
      f"runs left out of the tables), precision {'/'.join(precision_of)}; epochs of each method:")
for ds, budget in sorted({(r["dataset"], r["budget"]) for r in trained}):
    print(f"  {ds:>8}, {budget:>4}: " + ", ".join(f"{NAMES[m]} {e}" for (d, b, m), e in sorted(epochs_of.items())
                                                   if (d, b) == (ds, budget)))
print("code:", [s[:12] for s in shas], "| devices:", sorted({r["device_name"] for r in runs}))
print("data sets:", datasets, "| budgets:", sorted({r["budget"] for r in runs}),
      "| seeds per cell:", sorted({r["seeds"] for r in table}))
assert len(shas) == 1, "every stored run comes from one commit of the code"

# %% [markdown]
# ## 1. The tables
#
# Each cell is the mean ± the sample standard deviation over the seeds. The first table
# measures the representation (the protocol of chapter 00: kNN with k = 200 and temperature
# 0.1 on the backbone's features; the linear probe on the frozen features) and the training
# time (the number of epochs times the median epoch time, without the evaluation). The
# second measures clusters on the 2,000 test images, two ways. **Own clusters**: the method's
# own clustering (SeLa's best of its heads, chosen by NMI against the same test labels and
# so slightly optimistic; DeepCluster's k-means, each test image to its nearest centroid in
# the whitened space; SwAV's prototypes) against the classes, by NMI, ARI and
# the majority-vote accuracy (each cluster labelled by its most frequent class), read beside
# its K (on CIFAR-10, 30 or 100 clusters for 10 classes: an over-clustering; on CIFAR-100,
# SeLa's 30 are fewer than the 100 classes and DeepCluster's and SwAV's 100 equal them).
# **k-means, K = classes**: for
# every representation (the methods' networks, the pixels, the untrained and the supervised
# network alike), a k-means with as many
# clusters as classes, fitted on its L2-normalised training features and scored on the test
# images by NMI, ARI and the one-to-one
# (Hungarian) accuracy — one measure that compares them all.

# %%
display(Markdown(sk.table_markdown(table)))
display(Markdown(sk.table_markdown(table, "clusters")))

# %% [markdown]
# ## 2. What the numbers say, and what they do not
#
# Two methods differ only if the gap between their means is large against the spread of
# the seeds. With means $m_a, m_b$, sample standard deviations $s_a, s_b$ over $n_a, n_b$
# seeds, Welch's statistic is
#
# $$ t = \frac{m_a - m_b}{\sqrt{s_a^2/n_a + s_b^2/n_b}} . $$
#
# With three seeds a side, this book counts a difference when $|t| \ge 3$; below that, the
# table cannot order the two methods. The 95 % point of Student's t with 2–4 degrees of
# freedom lies between 2.8 and 4.3, so a $t$ near 3 is a weak verdict: the cell prints Welch's
# degrees of freedom $\nu = (v_a + v_b)^2 / \big(v_a^2/(n_a - 1) + v_b^2/(n_b - 1)\big)$,
# with $v = s^2/n$, beside each $t$, and calls a verdict *weak* when $t$ is below the 95 %
# point at $\nu$ rounded down. The cell ranks the four methods by kNN accuracy on each data
# set and says, for each neighbouring pair, whether the gap is larger than the seeds' spread.
# Verdicts between neighbours do not chain (A not ordered against B and B not against C
# leaves A against C open), so it then tests every other pair too. `sk.welch_t` and `sk.welch_df`
# compute $t$ and $\nu$ from two rows of the table (None when either row has a single seed).

# %%
T95 = {2: 4.30, 3: 3.18, 4: 2.78}   # Student's t, two-sided 95 % points (3 seeds a side: 2-4 degrees of freedom)
t95 = lambda df: T95[min(max(int(df), 2), 4)] if math.isfinite(df) else 1.96   # df rounded down


def is_weak(a, b, t, key="knn_acc"):
    """A verdict that passes the rule of 3 with |t| below the 95 % point of its degrees of freedom."""
    return t is not None and 3 <= abs(t) < t95(sk.welch_df(a, b, key))


verdicts, weak = {}, set()
for ds in datasets:
    rows = sorted([r for r in table if r["dataset"] == ds and r["budget"] == "lab" and r["method"] in SSL],
                  key=lambda r: -r["knn_acc"])
    print(f"{ds}, lab budget (each preset's epochs, sized for about four minutes), kNN accuracy (mean ± std over seeds):")
    for a, b in zip(rows, rows[1:]):
        t = sk.welch_t(a, b)
        df = sk.welch_df(a, b)
        word = ("no seeds to judge by" if t is None else "a gap the seeds' spread does not explain" if t >= 3 else
                "a gap within the seeds' spread: not shown to differ")
        if is_weak(a, b, t):
            word += f" (weak: below the 95 % point {t95(df)})"
        verdicts[(ds, a["method"], b["method"])] = t
        print(f"  {NAMES[a['method']]:>11} {a['knn_acc']:.2f} ± {a['knn_acc_std']:.2f}  vs  "
              f"{NAMES[b['method']]:<11} {b['knn_acc']:.2f} ± {b['knn_acc_std']:.2f}:  gap "
              f"{a['knn_acc'] - b['knn_acc']:.2f} points, t = {t if t is None else round(t, 1)}"
              f"{'' if df is None else f' (df {df:.1f})'} -> {word}")
    pairs = [(a, b, sk.welch_t(a, b)) for i, a in enumerate(rows) for b in rows[i + 1:]]
    weak |= {(ds, a["method"], b["method"]) for a, b, t in pairs if is_weak(a, b, t)}
    passing = [f"{NAMES[a['method']]} vs {NAMES[b['method']]} (t = {t:.1f}, df {sk.welch_df(a, b):.1f}"
               + (", weak" if is_weak(a, b, t) else "") + ")"
               for i, a in enumerate(rows) for b in rows[i + 2:] for t in [sk.welch_t(a, b)] if t is not None and t >= 3]
    print(f"  pairs further apart whose gap the spread does not explain: {', '.join(passing) or 'none'}")
    floors = [r for r in table if r["dataset"] == ds and r["method"] in ("pixels", "random") and r["budget"] == "lab"]
    ceiling = next(r for r in table if r["dataset"] == ds and r["method"] == "supervised" and r["budget"] == "lab")
    above = [NAMES[r["method"]] for r in rows if all((sk.welch_t(r, f) or 0) >= 3 for f in floors)]
    print(f"  above both floors (" + ", ".join(f"{NAMES[f['method']]} {f['knn_acc']:.2f}" for f in floors)
          + f") by more than the spread: {', '.join(above) or 'none'}; the supervised ceiling is "
          f"{ceiling['knn_acc']:.2f}, {ceiling['knn_acc'] - rows[0]['knn_acc']:.2f} points above the best "
          "self-supervised method\n")
    assert rows[0]["method"] == "npid" and verdicts[(ds, "npid", rows[1]["method"])] >= 3   # the summary says so
t_pair = lambda ds, a, b: sk.welch_t(*[next(r for r in table if r["dataset"] == ds and r["budget"] == "lab"
                                             and r["method"] == m) for m in (a, b)])
assert min(t_pair("cifar10", "swav", m) for m in ("deepcluster", "sela")) >= 3 > abs(t_pair("cifar10", "deepcluster", "sela"))
assert max(abs(t_pair("cifar100", "swav", "sela")), abs(t_pair("cifar100", "sela", "deepcluster"))) < 3 \
    <= t_pair("cifar100", "swav", "deepcluster")   # the summary says so
print("weak verdicts (t >= 3, below the 95 % point of their degrees of freedom):",
      ", ".join(f"{NAMES[a]} vs {NAMES[b]} ({ds})" for ds, a, b in sorted(weak)) or "none")
assert weak == {("cifar10", "swav", "sela")}   # the summary says so

# %% [markdown]
# Read the printed verdicts, not the order of the rows: neighbours whose gap is within the
# seeds' spread are not ordered by this table at this budget, and a pair further apart can
# still differ (the line after the neighbours). A verdict marked weak passed the rule of 3
# with a $t$ below the 95 % point of its degrees of freedom: a hint more seeds would settle.
# What the table does **not** say:
#
# * **Nothing about long training.** The lab budget (about four minutes, each preset's epochs printed
#   at the top) on 10,000 images is small; the papers train for hundreds of epochs on the full
#   data (section 8 puts the two side by side). Methods that learn slowly at first can rank
#   differently later; the curves of section 3 show how far each had got, and section 6
#   shows each method's 100-epoch run (one seed each).
# * **Nothing about the presets' fairness beyond time.** Every method got about the same time by design
#   (the presets were sized for four minutes on CIFAR-10; section 3 prints the times) and the same network, but its own learning rate, schedule, batch and head from its chapter,
#   tuned by a handful of single runs each (each preset's source cites them). SeLa's lab preset
#   has K = 30 clusters, sized for CIFAR-10's ten classes; on CIFAR-100 it is *under*-clustering
#   (30 clusters for 100 classes) while DeepCluster and SwAV keep 100 (the presets ran on
#   CIFAR-100 unchanged, not re-tuned). So SeLa's own-cluster scores on CIFAR-100 cannot be set
#   against DeepCluster's and SwAV's: a different K changes NMI and majority accuracy by itself,
#   and with K = 100 on 2,000 test images NMI has a high chance level (section 4 prints it).
# * **Nothing beyond these data sets and this network.** Every run is a 4-layer ConvNet on
#   32x32 images; a larger network or larger images can order the methods differently.
#
# **What does rounding the codes cost SwAV here?** SeLa and DeepCluster train on *hard*
# pseudo-labels, each image wholly in one cluster (SeLa: the arg-max of its row of the
# transport plan; DeepCluster: its k-means cluster), while SwAV trains on *soft* codes (each
# image's row of the batch's Sinkhorn plan, a probability over the prototypes; chapter 05).
# On CIFAR-10's kNN, SwAV stands above DeepCluster and, weakly, above SeLa (the verdicts
# above); on the linear probe the cell below shows the table does not order it against SeLa
# and puts it only weakly above DeepCluster. Chapter 05 (section 9) reads two stored
# variants of SwAV's lab preset, three seeds each, each with one change: its codes rounded
# to one-hot vectors (*hard codes*), or four small crops per image beside the two
# full-resolution ones, with the codes left soft (*multi-crop*, 2 + 4 crops). The cell sets
# both beside SwAV's preset, SeLa and DeepCluster on CIFAR-10, by Welch's $t$ (positive: the
# first row runs higher) and the verdicts of the rule above, taken on $|t|$. If hard labels
# hold SeLa and DeepCluster back, rounding SwAV's codes should bring it down to them.

# %%
VARIANT = {"hard_codes": "SwAV, hard codes", "multicrop": "SwAV, multi-crop (soft codes)"}
variants = {v: sk.results_table([r for r in all_lines if r.get("variant") == v])[0] for v in VARIANT}
assert all(row["dataset"] == "cifar10" for row in variants.values())
lab10 = {r["method"]: r for r in table if r["dataset"] == "cifar10" and r["budget"] == "lab"}
rows10 = {**lab10, **variants}
LABEL = {**NAMES, "swav": "SwAV (preset)", **VARIANT}


def verdict(a, b, key):
    """Welch's t of rows a and b on key, and the rule's verdict on |t| (weak below the 95 % point)."""
    t, df = sk.welch_t(rows10[a], rows10[b], key), sk.welch_df(rows10[a], rows10[b], key)
    word = "not ordered" if abs(t) < 3 else "apart" + (", weak" if is_weak(rows10[a], rows10[b], t, key) else "")
    return t, word, f"t = {t:+.1f} (df {df:.1f}): {word}"


show = lambda m, key: f"{LABEL[m]} {rows10[m][key]:.2f} ± {rows10[m][key + '_std']:.2f}"
seen = {}
n_seeds, = {rows10[m]["seeds"] for m in ("swav", "sela", "deepcluster", *VARIANT)}   # one seed count for all five
for key, name in (("knn_acc", "kNN"), ("linear_acc", "linear probe")):
    print(f"{name}, CIFAR-10 lab, mean ± std over {n_seeds} seeds each:")
    for a, others in (("swav", ("sela", "deepcluster")), *((v, ("swav", "sela", "deepcluster")) for v in VARIANT)):
        for b in others:
            t, word, text = verdict(a, b, key)
            seen[key, a, b] = word
            print(f"  {show(a, key):>42}  vs  {show(b, key):<28} {text}")
print("epochs and training time: " + "; ".join(f"{LABEL[m]}: {rows10[m]['epochs']} epochs, {rows10[m]['train_s']:.0f} s"
                                               for m in ("swav", *VARIANT, "sela", "deepcluster")))
# what the text below says:
assert all(rows10[v]["epochs"] == rows10["swav"]["epochs"] for v in VARIANT)
assert rows10["multicrop"]["train_s"] > rows10["swav"]["train_s"]
assert (rows10["swav"]["epochs"], rows10["sela"]["epochs"], rows10["deepcluster"]["epochs"]) == (42, 48, 48)
gaps = [rows10["swav"][k] - rows10[m][k] for k in ("knn_acc", "linear_acc") for m in ("sela", "deepcluster")]
assert 2.55 <= min(gaps) and max(gaps) < 3.65   # "2.6 to 3.6 points"
assert seen["knn_acc", "multicrop", "swav"] == "apart" and seen["linear_acc", "multicrop", "swav"] == "apart, weak"
assert max(rows10[m]["knn_acc"] for m in ("sela", "deepcluster")) < rows10["hard_codes"]["knn_acc"] < rows10["swav"]["knn_acc"]
assert rows10["hard_codes"]["linear_acc"] < min(rows10[m]["linear_acc"] for m in ("sela", "deepcluster"))
assert seen["knn_acc", "swav", "sela"] == "apart, weak" and seen["knn_acc", "swav", "deepcluster"] == "apart"
assert seen["linear_acc", "swav", "sela"] == "not ordered" and seen["linear_acc", "swav", "deepcluster"] == "apart, weak"
assert all(seen[k, "hard_codes", "swav"] == "apart" and verdict("hard_codes", "swav", k)[0] < 0 for k in ("knn_acc", "linear_acc"))
assert all(seen[k, v, m] == "not ordered" for k in ("knn_acc", "linear_acc") for v in VARIANT for m in ("sela", "deepcluster"))

# %% [markdown]
# Rounding the codes costs SwAV about 2 kNN and 3 linear points at this budget: more than
# the seeds' spread on both measures, and neither verdict weak. It brings SwAV within the
# spread of SeLa and DeepCluster: the table orders it against neither (not ordered is not
# the same as equal: its kNN mean still lies between theirs and the preset's, its linear
# mean just below both). That is consistent with the hard labels SeLa and DeepCluster train
# on costing them accuracy at this budget, but it does not show that they are the reason.
# The multi-crop variant keeps its codes soft, trains longer than the preset (printed) and
# drops about as far (on the linear probe only weakly apart from the preset, t = -3.0), and
# is ordered against neither method either: landing there follows from the size of the drop,
# since the preset stands only 2.6 to 3.6 points above SeLa and DeepCluster, not from the
# codes being hard. And SwAV differs from both in more than its codes: it predicts one
# view's code from the other view, computes its codes online on each batch instead of
# relabelling the whole data set each epoch, and its preset trains 42 epochs to their 48,
# with its own rate and head.

# %% [markdown]
# ## 3. Accuracy against wall-clock
#
# Epochs are not equally expensive: SwAV computes two views per image, SeLa relabels the
# whole data set before every epoch, DeepCluster runs PCA and k-means; that is why the lab
# presets train different numbers of epochs in the same time. The kNN monitor was
# measured every few epochs (each preset says how often); below, its mean over the seeds against the time spent
# training up to that epoch (the epochs done times the run's median epoch time, so that an
# epoch slowed by another job on the machine does not bend the curve; whole runs slowed by
# the machine's load do shift it, which the spread of the printed times shows).

# %%
fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.8), squeeze=False)
for ax, ds in zip(axes[0], datasets):
    for m in ["supervised", *SSL]:
        rs = [r for r in runs if r["dataset"] == ds and r["method"] == m and r["budget"] == "lab"]
        if not rs:
            continue
        n = min(len(r["curve"]) for r in rs)
        measured = [e for e in range(n) if all(r["curve"][e]["knn_acc"] is not None for r in rs)]  # monitor epochs
        t = [(e + 1) * sum(r["train_s"] / r["epochs"] for r in rs) / len(rs) for e in measured]
        acc = [sum(r["curve"][e]["knn_acc"] for r in rs) / len(rs) for e in measured]
        ax.plot(t, acc, marker="o", ms=3, label=NAMES[m], color=COLOUR[m], ls="--" if m == "supervised" else "-")
    floor = next(r for r in table if r["dataset"] == ds and r["method"] == "random" and r["budget"] == "lab")
    ax.axhline(floor["knn_acc"], color="grey", lw=1, ls=":", label="random init")
    ax.set(xlabel="training time (s on 2 CPU cores; epochs x median epoch time)", ylabel="kNN top-1 accuracy (%)",
           title=f"{ds}: kNN accuracy during training (mean of seeds)")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

for ds in datasets:
    for m in SSL:
        row = next((r for r in table if r["dataset"] == ds and r["method"] == m and r["budget"] == "lab"), None)
        if row:
            print(f"{ds:>8} {NAMES[m]:>11}: {row['train_s']:.0f} ± {row['train_s_std']:.0f} s of training "
                  f"({row['images_per_s']:.0f} images/s in the gradient steps, without relabelling or k-means) "
                  f"for kNN {row['knn_acc']:.1f} %")
speed = {ds: {m: next(r["images_per_s"] for r in table if r["dataset"] == ds and r["method"] == m
                      and r["budget"] == "lab") for m in SSL} for ds in datasets}
if {"cifar10", "cifar100"} <= set(datasets):
    print("images/s of the CIFAR-100 runs over the CIFAR-10 runs of the same preset: "
          + ", ".join(f"{NAMES[m]} {speed['cifar100'][m] / speed['cifar10'][m]:.2f}" for m in SSL))

# %% [markdown]
# Compare the times within one data set rather than across them: the two grids ran at
# different hours (CIFAR-100's after CIFAR-10's) on a shared 2-core machine, and the same preset (the same network, the same
# number of images of the same size) does not run at the same speed at every hour (the ratio
# is printed above); for the self-supervised presets the data set changes nothing in the
# computation (the same K, heads and prototypes on both).

# %% [markdown]
# ## 4. Clusters against classes
#
# Three of the methods produce clusters (NPID does not: every image is its own class). A
# method can score well on kNN while its clusters cut across the classes, or it can *split*
# each class into several clusters, which is harmless for features (on CIFAR-10, K is 3–10
# times the number of classes) but lowers the ARI and would cap a one-to-one accuracy, which
# is why the own-cluster table reports the majority-vote accuracy instead (it labels every
# cluster on its own, is not penalised and even rises with K). For each CIFAR-10 class we count the clusters that hold at least 10 % of its
# test images, and the share of its images that its largest cluster holds (mean over seeds).

# %%
c10 = [r for r in runs if r["dataset"] == "cifar10" and r["budget"] == "lab" and r.get("contingency")]
clusterers = [m for m in SSL if any(r["method"] == m for r in c10)]
tops = {}
classes = labdata.load("cifar10", "test", subset="lab").classes if "cifar10" in datasets else None
for m in clusterers:
    rs = [r for r in c10 if r["method"] == m]
    split = sum(sum(r["class_clusters_10pct"]) / len(r["class_clusters_10pct"]) for r in rs) / len(rs)
    top = sum(sum(r["class_top_share"]) / len(r["class_top_share"]) for r in rs) / len(rs)
    used = sum(r["used_clusters"] for r in rs) / len(rs)
    tops[m] = top
    print(f"{NAMES[m]:>11}: K = {rs[0]['num_clusters']}, {used:.0f} clusters used on the test images; per class, "
          f"{split:.1f} clusters hold >= 10 % of its images and the largest holds {100 * top:.0f} % of them")
assert max(tops.values()) < 0.5 and min(tops, key=tops.get) == "swav"   # what the text below says

fig, axes = plt.subplots(1, len(clusterers), figsize=(4.6 * len(clusterers), 4.2), squeeze=False)
for ax, m in zip(axes[0], clusterers):
    r = next(r for r in c10 if r["method"] == m and r["seed"] == min(x["seed"] for x in c10 if x["method"] == m))
    n = torch.tensor(r["contingency"], dtype=torch.float64)       # clusters x classes, test images
    share = n / n.sum(0, keepdim=True)                            # each class's distribution over clusters
    order = torch.argsort(share.argmax(1) * 10 + (1 - share.max(1).values))  # clusters grouped by their main class
    im = ax.imshow(share[order].T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set(xlabel="cluster (grouped by its main class)",
           title=f"{NAMES[m]}: where each class goes\nNMI {100 * r['nmi']:.0f} %, seed {r['seed']}")
    ax.set_yticks(range(len(classes)), classes if ax is axes[0][0] else [], fontsize=7)   # class names once
axes[0][0].set_ylabel("class")
fig.colorbar(im, ax=axes[0].tolist(), label="share of the class's test images")
plt.show()

# %% [markdown]
# A class that one bright cell holds would be *found*; a class spread thinly along its row
# is *split* or *mixed*. Read the printed counts beside the pictures (the picture is one
# seed, the counts are means over the seeds): at this budget the largest cluster of a class
# holds the printed share of it on average, far from all of it — no method finds the
# classes yet, and SwAV, whose 100 prototypes are all used on the test images (printed),
# spreads each class thinnest, thinner than DeepCluster with the same K.

# %% [markdown]
# ### Do the methods' features cluster better than the floors?
#
# A method's own clusters have their own K (on CIFAR-10 more clusters than classes; on
# CIFAR-100 fewer or as many), and neither the majority accuracy nor NMI corrects for K, so
# they can only be read with it. The fairer question for every network is the second table's:
# cluster its features into exactly as many clusters as there are classes with k-means, and
# compare with the same k-means on the standardised pixels and on the untrained network's
# features. The cell below computes, per data set, each network's NMI and one-to-one accuracy
# of that k-means, and Welch's t of its NMI against the better of the two floors. It first
# prints the **chance level**: the same scores for a clustering that ignores the images (the
# test images dealt at random into K equal clusters, 20 draws). NMI is not zero by chance, and
# the more clusters for a given number of images (the fewer images per cluster), the higher it
# sits: with K = 100 clusters for 2,000 test images
# (20 per cluster) a random partition already shares a good deal of information with the
# classes by accident, so on CIFAR-100 read the NMI against this line (ARI corrects for chance;
# its chance level is 0).

# %%
cluster_verdict, chance_nmi = {}, {}
for ds in datasets:
    rows = {r["method"]: r for r in table if r["dataset"] == ds and r["budget"] == "lab" and not r.get("variant")}
    floors = [rows[b] for b in ("pixels", "random") if b in rows]
    floor = max(floors, key=lambda r: r["kmeans_nmi"])
    labels = labdata.load(ds, "test", subset="lab").labels
    K = int(labels.max()) + 1
    g = torch.Generator().manual_seed(0)
    draws = [torch.randperm(len(labels), generator=g) % K for _ in range(20)]   # K equal clusters, shuffled
    chance_nmi[ds] = sum(sk.nmi(d, labels) for d in draws) / len(draws)
    chance_acc = sum(sk.hungarian_accuracy(d, labels) for d in draws) / len(draws)
    chance_ari = sum(sk.ari(d, labels) for d in draws) / len(draws)
    print(f"{ds}: k-means with K = {K} (the classes), NMI (%) and accuracy (%) on the {len(labels)} test images, "
          f"mean ± std over seeds\n  {'chance':>12}: NMI {100 * chance_nmi[ds]:5.1f}, accuracy {chance_acc:5.1f}, "
          f"ARI {100 * chance_ari:.1f}   (random equal clusters, mean of 20 draws)")
    for m in ["pixels", "random", *SSL, "supervised"]:
        r = rows.get(m)
        if r is None or r.get("kmeans_nmi") is None:
            continue
        t = sk.welch_t(r, floor, "kmeans_nmi") if m in SSL else None
        if m in SSL:
            cluster_verdict[(ds, m)] = t
        verdict = "" if t is None else (f"   vs {NAMES[floor['method']]}: t = {t:+.1f} -> "
                                        + ("clearly better" if t >= 3 else "clearly worse" if t <= -3 else
                                           "no difference the seeds' spread explains away"))
        print(f"  {NAMES[m]:>12}: NMI {100 * r['kmeans_nmi']:5.1f} ± {100 * r['kmeans_nmi_std']:.1f}, "
              f"accuracy {r['kmeans_acc']:5.1f} ± {r['kmeans_acc_std']:.1f}{verdict}")
beaten = {k: t for k, t in cluster_verdict.items() if t is not None and t >= 3}
print(f"\nmethods whose k-means clusters beat both floors clearly (t >= 3): "
      f"{', '.join(f'{NAMES[m]} ({ds})' for ds, m in beaten) or 'none'}")
c100 = {r["method"]: r for r in table if r["dataset"] == "cifar100" and r["budget"] == "lab"}
above_chance = {m: 100 * (c100[m]["kmeans_nmi"] - chance_nmi["cifar100"]) for m in ["pixels", "random", *SSL, "supervised"]}
print("cifar100, NMI above chance (points):", {NAMES[m]: round(v, 1) for m, v in above_chance.items()})
over_pixels = [100 * (c100[m]["kmeans_nmi"] - c100["pixels"]["kmeans_nmi"]) for m in SSL]
print(f"cifar100, the methods' NMI above the pixels floor: {min(over_pixels):.1f}-{max(over_pixels):.1f} points "
      f"(pixels' spread over seeds: {100 * c100['pixels']['kmeans_nmi_std']:.1f})")
assert all((ds, m) in beaten for ds in ("cifar10", "cifar100") for m in SSL)   # what the text below says
assert max(above_chance[m] for m in SSL) <= 0.4 * above_chance["supervised"] and max(over_pixels) < 3.5

# %% [markdown]
# On both data sets every method's k-means clusters beat both floors by the rule (t ≥ 3,
# printed and asserted). On CIFAR-10 the gains over the floors are several NMI points, though
# SeLa's and DeepCluster's seeds spread by more than a point. On CIFAR-100 the methods stand
# less than 3.5 NMI points over the pixels (printed, asserted): t is large because every
# k-means NMI there barely varies with the seed (the spreads are printed), not because the
# gap is large. Read the NMI against the chance line (each network's points above it are
# printed): the self-supervised networks gain at most 40 % of what the supervised network
# gains over chance (asserted). With 20 test images per class and 100 clusters, a few
# minutes of self-supervision (section 3 prints the times) on 10,000 images hardly groups
# CIFAR-100's fine classes.

# %% [markdown]
# ## 5. The four representations, side by side
#
# The stored runs also keep a UMAP embedding of 1,000 test images' features for seed 0 of
# each method on CIFAR-10 (computed by the sweep from the run's final network). Colours are
# the true classes, which no method saw.

# %%
umaps = {r["method"]: r["umap"] for r in runs
         if r.get("umap") and r["dataset"] == "cifar10" and r["budget"] == "lab"}
shown = [m for m in SSL if m in umaps]
fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 4), squeeze=False)
for ax, m in zip(axes[0], shown):
    xy = torch.tensor(umaps[m]["xy"])
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=umaps[m]["labels"], cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    knn = next(r["knn_acc"] for r in runs
               if r["method"] == m and r["dataset"] == "cifar10" and r["budget"] == "lab" and r["seed"] == 0)
    ax.set(title=f"{NAMES[m]}, seed 0 (kNN {knn:.1f} %)", xticks=[], yticks=[], xlabel="UMAP 1", ylabel="UMAP 2")
cb = fig.colorbar(sc, ax=axes[0].tolist(), ticks=range(10))
cb.ax.set_yticklabels(classes, fontsize=7)
plt.show()

# %% [markdown]
# ## 6. A longer budget: 100 epochs, one seed each
#
# The `long` budget trains each method's same lab preset for 100 epochs instead of its lab
# epochs, on CIFAR-10, with the kNN monitor every 5 epochs
# (`python -m sslkit.sweep run --methods sela deepcluster swav npid --datasets cifar10 --seeds 0
# --budget long -- --knn_every=5`). The training time of each run on 2 CPU cores is printed
# below, beside the run's images/s as a fraction of its own lab runs' (the same preset and
# network, so a fraction below 1 means a slower machine, not a slower method: the shared
# machine's speed changed between the sessions these runs came from). SwAV's and NPID's cosine
# schedules stretch over the 100 epochs; SeLa's and DeepCluster's rates are constant.
#
# There is **one seed per method**, so no spread of its own. The only guide to the noise is
# the spread of the lab seeds, measured at the lab budget: below, a gap between two long runs
# smaller than 3 times the largest lab standard deviation is read as no difference, and a
# larger one as a hint from a single seed — a rough rule, since the spread at 100 epochs was
# not measured. In the left figure the dots are the lab runs (mean ± std over their seeds,
# at their last epoch), the curves the 100-epoch runs.

# %%
long_runs = {r["method"]: r for r in runs if r["dataset"] == "cifar10" and r["budget"] == "long"}
lab_rows = {r["method"]: r for r in table if r["dataset"] == "cifar10" and r["budget"] == "lab"}
long_methods = [m for m in ["supervised", *SSL] if m in long_runs]
assert set(SSL) <= set(long_methods), "the text of this section expects a 100-epoch run of every method"
print(f"stored 100-epoch runs on cifar10: {', '.join(NAMES[m] for m in long_methods)}")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for m in long_methods:
    r, colour = long_runs[m], COLOUR[m]
    pts = [(c["epoch"], c["knn_acc"]) for c in r["curve"] if c["knn_acc"] is not None]
    per_epoch = r["train_s"] / r["epochs"]   # the median epoch time, as in section 3
    style = dict(color=colour, lw=1.2, label=NAMES[m], ls="--" if m == "supervised" else "-")
    axes[0].plot([p[0] for p in pts], [p[1] for p in pts], **style)
    axes[1].plot([p[0] * per_epoch / 60 for p in pts], [p[1] for p in pts], **style)
    lab = lab_rows[m]   # the lab budget's runs: mean ± std over their seeds, at their last epoch
    axes[0].errorbar(lab["epochs"], lab["knn_acc"], yerr=lab["knn_acc_std"], color=colour, marker="o", capsize=3)
floor = lab_rows["random"]["knn_acc"]
for ax in axes:
    ax.axhline(floor, color="grey", lw=1, ls=":", label="random init")
    ax.set_ylabel("kNN top-1 accuracy (%)")
axes[0].set(xlabel="epoch", title="cifar10: 100-epoch runs (one seed each)\n"
                                  "dots: the lab runs, mean ± std")
axes[1].set(xlabel="training time (min on 2 CPU cores; epochs x median epoch time)",
            title="the same runs against training time")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# the relabelling schedule, from the method's own code and each run's config
lab_cfg = sk.config_from_dict(next(r for r in runs if r["method"] == "sela" and r["budget"] == "lab")["config"])
long_cfg = sk.config_from_dict(long_runs["sela"]["config"])
at_lab = sk.build_method(lab_cfg, 16).relabel_epochs(lab_cfg.epochs)
at_long = sk.build_method(long_cfg, 16).relabel_epochs(long_cfg.epochs)
where = "every one" if len(at_long) == long_cfg.epochs else f"0-based: {at_long}"
print(f"SeLa relabelled at the start of {len(at_lab)} of its {lab_cfg.epochs} lab epochs, and of "
      f"{len(at_long)} of its {long_cfg.epochs} long epochs ({where})\n")
ONE_IMAGE = 100 / next(iter(long_runs.values()))["test_images"]   # one test image, in accuracy points
print(f"{'method':>11} | kNN, lab (epochs; mean ± std) | kNN, 100 epochs |  gain | gain - 3 std | linear, 100 epochs | "
      f"best kNN (epoch) | last 10 epochs | training time (img/s vs lab) | precision (long / lab)")
for m in long_methods:
    r, lab = long_runs[m], lab_rows[m]
    pts = [(c["epoch"], c["knn_acc"]) for c in r["curve"] if c["knn_acc"] is not None]
    best = max(pts, key=lambda p: p[1])
    tail = [k for e, k in pts if e >= r["epochs"] - 10]
    gain = r["knn_acc"] - lab["knn_acc"]
    print(f"{NAMES[m]:>11} | {lab['knn_acc']:5.2f} ± {lab['knn_acc_std']:.2f} ({lab['epochs']:2d}; {lab['seeds']} seeds) | "
          f"{r['knn_acc']:14.2f}  | {gain:+5.2f} | {gain - 3 * lab['knn_acc_std']:+12.2f} | {r['linear_acc']:18.2f} | "
          f"{best[1]:7.1f} ({best[0]:3d})  | {tail[0]:.1f} -> {tail[-1]:.1f}   | {r['train_s'] / 60:5.1f} min "
          f"({r['images_per_s'] / lab['images_per_s']:.2f})          | "
          f"{r.get('precision') or r['config']['precision']} / {lab['precision']}")
print(f"gain: the single 100-epoch run minus the mean of the lab seeds; one test image is {ONE_IMAGE:.2f} points")
ssl_long = sorted([m for m in long_methods if m in SSL], key=lambda m: -long_runs[m]["knn_acc"])
noise = 3 * max(lab_rows[m]["knn_acc_std"] for m in ssl_long)
order_long = NAMES[ssl_long[0]]
for a, b in zip(ssl_long, ssl_long[1:]):
    gap = long_runs[a]["knn_acc"] - long_runs[b]["knn_acc"]
    print(f"{NAMES[a]} vs {NAMES[b]} after 100 epochs: {gap:.1f} points -> "
          f"{'larger than' if gap > noise else 'within'} 3 x the largest lab std ({noise:.1f} points)"
          f"{': a single-seed hint, not a result' if gap > noise else ': no difference'}")
    order_long += (" > " if gap > noise else " ≈ ") + NAMES[b]
further = [(a, b) for i, a in enumerate(ssl_long) for b in ssl_long[i + 2:]
           if long_runs[a]["knn_acc"] - long_runs[b]["knn_acc"] > noise]
print(f"pairs further apart with a gap beyond {noise:.1f} points (verdicts do not chain; single-seed hints): "
      + (", ".join(f"{NAMES[a]} - {NAMES[b]} {long_runs[a]['knn_acc'] - long_runs[b]['knn_acc']:.1f}"
                   for a, b in further) or "none"))
lab_sorted = sorted(ssl_long, key=lambda m: -lab_rows[m]["knn_acc"])
order_lab = NAMES[lab_sorted[0]]
for a, b in zip(lab_sorted, lab_sorted[1:]):   # the verdicts of section 2
    t = sk.welch_t(lab_rows[a], lab_rows[b])
    order_lab += (" > " if t is not None and t >= 3 else " ≈ ") + NAMES[b]
print(f"\nat the lab budget: {order_lab}   (≈: neighbours within the seeds' spread, Welch's t < 3; see section 2 "
      "for pairs further apart)")
print(f"at 100 epochs: {order_long}   (≈: gap within {noise:.1f} points; >: a single-seed hint)")
margin = {m: long_runs[m]["knn_acc"] - lab_rows[m]["knn_acc"] - 3 * lab_rows[m]["knn_acc_std"] for m in ssl_long}
clear_gain = {NAMES[m]: "above" if margin[m] > ONE_IMAGE else "at the line" if margin[m] >= -ONE_IMAGE else "not above"
              for m in ssl_long}
print(f"100-epoch run against its lab mean + 3 lab std (at the line: within one test image, {ONE_IMAGE:.2f} points):",
      clear_gain)
EXPECTED_CLEAR_GAIN = {"SeLa": "at the line", "DeepCluster": "above", "SwAV": "above", "NPID": "not above"}   # the text below
assert clear_gain == EXPECTED_CLEAR_GAIN, clear_gain
assert order_long.count(">") == 0 and further == [("swav", "deepcluster")]   # the text below says so
for m in ssl_long:
    if clear_gain[NAMES[m]] == "not above":   # where the single 100-epoch run sits against the lab seeds
        r, lab = long_runs[m], lab_rows[m]
        pts = [(c["epoch"], c["knn_acc"]) for c in r["curve"] if c["knn_acc"] is not None]
        at_lab = max((p for p in pts if p[0] <= lab["epochs"]), key=lambda p: p[0])
        print(f"{NAMES[m]}: 100 epochs end {r['knn_acc'] - lab['knn_acc']:+.2f} points from the lab mean "
              f"({lab['epochs']} epochs, std {lab['knn_acc_std']:.2f}); the 100-epoch run itself read "
              f"{at_lab[1]:.1f} % at epoch {at_lab[0]} and {r['knn_acc']:.1f} % at epoch {r['epochs']}")
        assert abs(r["knn_acc"] - lab["knn_acc"]) < 3 * lab["knn_acc_std"], "the text says: no difference"
        late = [k for e, k in pts if e > r["epochs"] // 2]
        print(f"  its kNN over the second half of the 100 epochs: {min(late):.1f}-{max(late):.1f} %")
        assert abs(r["knn_acc"] - at_lab[1]) < 1.5 and max(late) - min(late) < 1.5, "the text says: a flat curve"

# %% [markdown]
# SwAV and DeepCluster end their 100 epochs above their lab runs' mean by more than three of
# their lab standard deviations, DeepCluster by a small margin; SeLa lands on that line, its
# gain equal to three lab standard deviations to within one test image (the margins are
# printed in the column "gain - 3 std", the verdicts asserted). SeLa's and DeepCluster's lab
# seeds spread by 1-1.6 points, so their 100-epoch gains are only about three of those
# spreads. NPID does not gain: its lab preset already trains 80 epochs. Its single 100-epoch
# run ends within the lab seeds' spread of their mean and within 1.5 points of where its own
# curve stood at the lab epochs, and the curve stays within 1.5 points over the whole second
# half of the run (printed, asserted). At this learning rate and on 10,000 images NPID reaches
# its plateau by the middle of the run, so its lab preset already sits on it. The cell also
# prints the two orders, at the lab budget and at 100 epochs. The 100-epoch order compares
# neighbours only, and its verdicts do not chain (section 2): the pairs further apart whose
# gap exceeds the rule are printed on the line before the two orders; at 100 epochs only SwAV
# over DeepCluster is one (asserted). Read all of them with the single seed in mind (a rough
# rule, above), and with the column of best kNN against the last one (a curve that peaked
# earlier had stopped improving). And 100 epochs on 10,000 images is 1 M images seen, far
# fewer than the published CIFAR-10 runs (section 8 prints their budgets and places these runs
# on that axis).

# %% [markdown]
# ## 7. Re-checking a stored number live
#
# Stored numbers go stale when the code changes. So this chapter re-runs one configuration
# every time it is executed (in the book's tests too): the self-supervised method whose stored
# runs have the shortest mean training time (printed; where two means lie within seconds of
# each other the pick is as good as arbitrary), from its stored config, with a **new seed**
# that none of the stored runs used, and asserts that its accuracy lands in a band around the
# stored seeds: the mean ± max(3 standard deviations, 2.5 points) (2.5 points: about two
# binomial standard errors of an accuracy measured on 2,000 test images). The distance from
# the stored mean is printed in standard deviations as well: a live run inside the band only
# thanks to the 2.5-point floor is a reason to train more seeds, not yet a sign that the code
# changed.
#
# SVHN: the sweep accepts `svhn` (the official `.mat` files through torchvision); no SVHN
# runs are stored yet — they are to be measured on a machine that has the files, with the
# same sweep command and `--datasets svhn`. Until then this cell, run with `DATASET = "svhn"`,
# stops with "no stored lab runs on svhn".

# %%
cands = [r for r in table if r["dataset"] == DATASET and r["budget"] == "lab" and r["method"] in SSL]
assert cands, f"no stored lab runs on {DATASET}"
cell = min(cands, key=lambda r: r["train_s"])
stored = [r for r in runs if r["dataset"] == DATASET and r["method"] == cell["method"] and r["budget"] == "lab"]
cfg = sk.config_from_dict(stored[0]["config"])
cfg.seed = max(r["seed"] for r in stored) + 100   # a seed no stored run used
cfg.output_dir = ""
print(f"re-running {NAMES[cell['method']]} on {DATASET}, lab budget ({cfg.epochs} epochs), seed {cfg.seed}; "
      f"stored: kNN {cell['knn_acc']:.2f} ± {cell['knn_acc_std']:.2f} over {cell['seeds']} seeds, "
      f"a mean of {cell['train_s']:.0f} s of training")

train = labdata.load(DATASET, "train", subset=cfg.subset)
test = labdata.load(DATASET, "test", subset=cfg.subset)
model = sk.build_method(cfg, len(train))
history = sk.fit(model, train.images, cfg, device, log=None, true_labels=train.labels)
live = sk.evaluate_method(model, train.images, train.labels, test.images, test.labels, knn_k=cfg.knn_k,
                          knn_temperature=cfg.knn_temperature)
train_s = len(history) * sorted(h["epoch_time_s"] for h in history)[len(history) // 2]
for key, name in (("knn_acc", "kNN"), ("linear_acc", "linear probe")):
    mean, std = cell[key], cell[key + "_std"]
    half = max(3 * std, 2.5)
    print(f"{name:>12}: live {live[key]:.2f} %   stored {mean:.2f} ± {std:.2f}  band [{mean - half:.2f}, {mean + half:.2f}]"
          f"   (live - stored mean = {(live[key] - mean) / std if std else 0:+.1f} std)")
    assert abs(live[key] - mean) <= half, f"the live {name} accuracy left the stored band: re-run the sweep"
print(f"training time: live {train_s:.0f} s, stored {cell['train_s']:.0f} ± {cell['train_s_std']:.0f} s "
      "(time depends on the machine and its load: not asserted)")

# %% [markdown]
# ## 8. The papers' numbers beside ours
#
# How far is the lab from what these methods reach when trained as their papers train them?
# The file `chapters/results/published.json` holds the published CIFAR-10, CIFAR-100 and SVHN
# numbers of the four methods that could be found, each with its backbone and its source
# with a link, and, where the source states them, its epochs and the images it saw in
# training (epochs x training images); a number from the method's own authors is marked
# `authors`, one from another group's re-run `reproduction`, and each row's `note` field in
# the file (not shown in the table) says how it was checked. DeepCluster and SwAV published
# no CIFAR numbers of their own, so for them the table shows re-runs by others. NPID's paper
# reports CIFAR-10 with a ResNet-18 (its Table 1; the file takes the number from two
# third-party quotations of that table, as its source says); its other rows are re-runs by
# others.

# %%
import json

PUBLISHED = RESULTS.parent / "published.json"
published = json.loads(PUBLISHED.read_text())
md_escape = lambda text: text.replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")   # inside a table's link
rows_md = ["| method | data | metric | % | backbone | epochs | images seen | source |", "|---|---|---|---|---|---|---|---|"]
for r in published:
    seen = f"{r['images_seen'] / 1e6:.0f} M" if r.get("images_seen") else "–"
    rows_md.append(f"| {r['method']} | {r['dataset']} | {r['metric']} | {r['value']:.1f} | {r['backbone'].split(' (')[0]} "
                   f"| {r.get('epochs') or '–'} | {seen} | [{r['source_kind']}: {md_escape(r['source'])}]({r['url']}) |")
display(Markdown("\n".join(rows_md)))

# %% [markdown]
# This book's kNN accuracies and the published CIFAR-10 kNN numbers against the number of
# images each network saw in training,
# on a log scale: the lab runs (mean of their seeds), the 100-epoch runs, and the published
# CIFAR-10 points. The lab networks are a 4-layer ConvNet on 10,000 images; the published
# ones are AlexNet or ResNet-18 on all 50,000, trained on GPUs for hundreds of epochs. Under
# the plot, the CIFAR-100 lab rows beside the published CIFAR-100 numbers of the same method.

# %%
seen_per_epoch = {r["method"]: r["train_images"] for r in runs if r.get("train_images")}
fig, ax = plt.subplots(figsize=(8, 4.2))
markers = {"sela": "o", "deepcluster": "s", "swav": "^", "npid": "D"}
plotted, unplotted = [], []   # the published CIFAR-10 kNN points with a known budget, and those without
for m in SSL:
    pts = [(row["epochs"] * seen_per_epoch[m], row["knn_acc"]) for budget in ("lab", "long")
           for row in table if row["dataset"] == "cifar10" and row["budget"] == budget and row["method"] == m]
    ax.plot(*zip(*pts), marker=markers[m], color=COLOUR[m], label=f"{NAMES[m]}: lab, then 100 epochs (this book)")
    knn_rows = [r for r in published if r["dataset"] == "CIFAR-10" and r["metric"].startswith("weighted kNN")
                and r["method"].startswith(NAMES[m])]   # published.json names methods as NAMES does
    paper = [r for r in knn_rows if r.get("images_seen")]
    plotted += paper
    unplotted += [r for r in knn_rows if not r.get("images_seen")]
    for r in paper:
        ax.scatter(r["images_seen"], r["value"], marker=markers[m], color=COLOUR[m], s=60, facecolors="none",
                   label=f"{r['method']}, {r['backbone'].split(' (')[0]} ({r['source_kind']})")
floor = next(r for r in table if r["dataset"] == "cifar10" and r["method"] == "random" and r["budget"] == "lab")
ax.axhline(floor["knn_acc"], color="grey", lw=1, ls=":", label="untrained network (this book)")
ax.set(xscale="log", xlabel="images seen in training (epochs x training images, log scale)",
       ylabel="kNN top-1 accuracy on CIFAR-10 (%)", title="where the lab sits on the training-budget axis")
ax.legend(fontsize=7, loc="lower right")
plt.tight_layout()
plt.show()
lab_seen = {m: next(r["epochs"] for r in table if r["dataset"] == "cifar10" and r["budget"] == "lab"
                    and r["method"] == m) * seen_per_epoch[m] for m in SSL}
paper_seen = [r["images_seen"] for r in published if r["dataset"] == "CIFAR-10" and r.get("images_seen")]
knn_seen = [r["images_seen"] for r in plotted]
print("images seen by the lab runs:", {NAMES[m]: f"{v / 1e6:.2f} M" for m, v in lab_seen.items()},
      f"| the published CIFAR-10 runs with a known budget (any metric): {min(paper_seen) / 1e6:.0f}-"
      f"{max(paper_seen) / 1e6:.0f} M, {min(paper_seen) / max(lab_seen.values()):.0f}-"
      f"{max(paper_seen) / min(lab_seen.values()):.0f}x more; the kNN points plotted: "
      f"{min(knn_seen) / 1e6:.0f}-{max(knn_seen) / 1e6:.0f} M")
print("published CIFAR-10 kNN numbers not plotted (no epochs stated):",
      "; ".join(f"{r['method']} {r['value']:.1f} ({r['backbone'].split(' (')[0]}, {r['source_kind']})" for r in unplotted))

print("\nCIFAR-100: the lab runs (mean ± std over seeds) beside the published numbers of the same method")
knn_gap_c100 = {}   # published kNN minus the lab's, per published row ("method (source kind)")
for m in SSL:
    lab = next(r for r in table if r["dataset"] == "cifar100" and r["budget"] == "lab" and r["method"] == m)
    theirs = [r for r in published if r["dataset"] == "CIFAR-100" and r["method"].startswith(NAMES[m])]
    paper = [f"{r['metric'].split(' top-1')[0]} {r['value']:.1f} ({r['method']}, {r['backbone'].split(' (')[0]}, "
             f"{r.get('epochs') or '?'} epochs, {r['source_kind']})" for r in theirs]
    knn_gap_c100.update({f"{r['method']} ({r['source_kind']})": r["value"] - lab["knn_acc"] for r in theirs
                         if r["metric"].startswith("weighted kNN")})
    print(f"  {NAMES[m]:>11}: lab kNN {lab['knn_acc']:.1f} ± {lab['knn_acc_std']:.1f}, linear "
          f"{lab['linear_acc']:.1f} ± {lab['linear_acc_std']:.1f} ({lab['epochs']} epochs, 4-layer ConvNet, 10,000 "
          f"images) | published: {'; '.join(paper) or 'none found'}")
print("published CIFAR-100 kNN minus the lab's (points):", {k: round(g, 1) for k, g in knn_gap_c100.items()})
assert min(knn_gap_c100.values()) > 0 and max(knn_gap_c100, key=knn_gap_c100.get) == "SeLa (authors)"

# %% [markdown]
# On CIFAR-100 the lab's kNN is below every published kNN number of the same method (printed
# and asserted): least below the AlexNet re-runs of DeepCluster and NPID by another group
# (Huang et al.; the gaps are printed), most below SeLa's authors' 400-epoch AlexNet (asserted).
# DeepCluster-v2 in that list is a later method from the SwAV paper (k-means prototypes
# trained like SwAV's), not chapter 04's DeepCluster; it appears because solo-learn's results
# table, the source of the SwAV row, lists it and its name starts with DeepCluster. It is not
# a target for this preset.

# %% [markdown]
# **What a GPU run of the `cifar10` presets should reach.** Each method's `cifar10` preset
# states its source's recipe (`python -m sslkit.train --method=M --help` prints it): SeLa's
# official CIFAR script (AlexNet, 400 epochs, 10 heads of 128 clusters), NPID's official CIFAR
# code (ResNet-18, 200 epochs), solo-learn's SwAV recipe (ResNet-18, 1000 epochs, LARS),
# DeepCluster's official defaults (AlexNet with Sobel, 200 epochs, a constant rate). Run as
# stated, they should land near the published numbers above of the same recipe: about 78 %
# kNN and 83 % linear for SeLa, about 80 % kNN for NPID, about 89 % linear for SwAV; for
# DeepCluster the closest published point is another group's AlexNet re-run (62 % kNN, 78 %
# linear), whose recipe the preset does not claim to equal. These are expectations, not
# results of this book: no GPU was available while it was written, and the lab's 4-layer
# ConvNet on 10,000 images is not the papers' network. `python -m sslkit.bench gpu --device
# cuda` measures the presets' throughput and runs them for a few epochs on a GPU.

# %% [markdown]
# ## Summary
#
# * One backbone, one evaluation, two budgets (each method's lab preset, three seeds on
#   CIFAR-10 and on CIFAR-100; the same presets for 100 epochs on CIFAR-10, one seed each), all
#   from one commit of the code: the sweep's table is the book's comparison of SeLa,
#   DeepCluster, SwAV and NPID; every number in it comes from a stored run that any reader can
#   re-run by one command.
# * A gap between two methods means something only when it is large against the seeds' spread;
#   the verdicts of section 2 are computed that way, not read off the order of the rows. The
#   presets give every method about the same training time on CIFAR-10 (the CIFAR-100 grid ran
#   the same presets slower) but different numbers of epochs, since an epoch costs each method
#   differently (section 3); how each network's clusters relate to the classes is a further
#   axis (section 4, with its spread in the second table).
# * At the lab budget NPID has the best kNN on both data sets, by more than the seeds' spread
#   over its neighbour (asserted in section 2). On CIFAR-10 SwAV is next, above DeepCluster by
#   more than the spread and above SeLa only weakly ($t$ below the 95 % point of its degrees
#   of freedom); DeepCluster and SeLa are not ordered. On CIFAR-100 the table orders none of
#   SwAV, SeLa and DeepCluster as neighbours; only SwAV above DeepCluster, further apart,
#   passes the rule (section 2 prints every t, asserted there). Every method's k-means
#   clusters beat both floors on both data sets, but on CIFAR-100 only a few NMI points above
#   what a random clustering scores (section 4).
# * On CIFAR-10, SwAV with its codes rounded to one-hot (chapter 05's hard-codes variant)
#   falls below its own preset by more than the seeds' spread on kNN and linear probe, to
#   within the spread of SeLa and DeepCluster, which train on hard labels (not ordered
#   against either). That is consistent with hard labels costing those two methods accuracy
#   here, but not a proof: chapter 05's multi-crop variant, with soft codes, drops about as
#   far (on the linear probe only weakly; section 2).
# * At 100 epochs (section 6, one seed each) SwAV and DeepCluster end above their lab runs
#   by more than three lab standard deviations (DeepCluster by a small margin) and SeLa right
#   at that line; NPID, whose lab preset already trains 80 epochs, does not gain. No two
#   neighbours in the 100-epoch order are further apart than the rough noise rule; only SwAV
#   over DeepCluster is — a single-seed hint that more seeds would have to confirm.
# * The live re-run checks, every time the book is tested, that one stored configuration (the
#   self-supervised method with the shortest mean stored training time) re-trained with a new
#   seed still lands in the stored band, for kNN and linear probe.
#
# ## References
#
# * Y. M. Asano, C. Rupprecht, A. Vedaldi. *Self-labelling via simultaneous clustering and
#   representation learning.* ICLR 2020. [arXiv:1911.05371](https://arxiv.org/abs/1911.05371);
#   code: [yukimasano/self-label](https://github.com/yukimasano/self-label).
# * M. Caron, P. Bojanowski, A. Joulin, M. Douze. *Deep clustering for unsupervised learning of
#   visual features.* ECCV 2018. [arXiv:1807.05520](https://arxiv.org/abs/1807.05520); code:
#   [facebookresearch/deepcluster](https://github.com/facebookresearch/deepcluster).
# * M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski, A. Joulin. *Unsupervised learning of
#   visual features by contrasting cluster assignments.* NeurIPS 2020.
#   [arXiv:2006.09882](https://arxiv.org/abs/2006.09882); code:
#   [facebookresearch/swav](https://github.com/facebookresearch/swav).
# * Z. Wu, Y. Xiong, S. X. Yu, D. Lin. *Unsupervised feature learning via non-parametric
#   instance discrimination.* CVPR 2018. [arXiv:1805.01978](https://arxiv.org/abs/1805.01978);
#   code: [zhirongw/lemniscate.pytorch](https://github.com/zhirongw/lemniscate.pytorch).
# * V. G. Turrisi da Costa et al. *solo-learn: a library of self-supervised methods for visual
#   representation learning.* JMLR 2022. [paper](https://jmlr.org/papers/v23/21-1155.html) — a
#   benchmark of many methods on one protocol, at full scale.
# * B. L. Welch. *The generalization of Student's problem when several different population
#   variances are involved.* Biometrika 34, 1947.
#   [doi:10.1093/biomet/34.1-2.28](https://doi.org/10.1093/biomet/34.1-2.28).

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


# %% [markdown]
# **Exercise 1 — a table cell from stored runs [3 points].** `lines` is a list of dicts like
# the lines of `runs.jsonl` (keys `method`, `dataset`, `seed`, `knn_acc`, ...). Implement
# `cell_summary(lines, key)`: group the lines by `(dataset, method)` and return a dict
# `{(dataset, method): (mean, std, n)}` of the values of `key` — the mean, the **sample**
# standard deviation (divide by n - 1; 0.0 when n = 1) and the number of runs. Lines whose
# `key` is missing or None do not count. No `sk.results_table`.

# %%
def cell_summary(lines, key):
    ...


# %% [markdown]
# **Exercise 2 — Welch's t and its degrees of freedom [3 points].** Implement
# `welch(a, b)` for two lists of accuracies (one per seed, at least two each): return
# `(t, df)` with $t = (m_a - m_b)/\sqrt{s_a^2/n_a + s_b^2/n_b}$ (sample standard deviations)
# and the Welch–Satterthwaite degrees of freedom
# $\nu = \dfrac{(s_a^2/n_a + s_b^2/n_b)^2}{\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}$.
# Both as Python floats. No scipy.

# %%
def welch(a, b):
    ...


# %% [markdown]
# **Exercise 3 — the smallest gap that counts [1 point].** Two methods were each run with
# three seeds, and both have a sample standard deviation of exactly 1.0 point. How large must
# the gap between their means be for Welch's $|t|$ to reach 3 (the threshold for a gap that counts)? Give
# the number of points (3 decimals).

# %%
smallest_gap = ...

# %% [markdown]
# **Exercise 4 — the live re-run's band [1 point].** The stored runs of a method reached
# kNN accuracies of 44.0, 44.4 and 44.8 %. A live re-run must land in the band mean ±
# max(3 sample standard deviations, 2.5 points). What is the band's half-width in points?

# %%
band_half_width = ...
