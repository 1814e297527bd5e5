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
# # Chapter 00 — A tour of the labs and the yardstick
#
# This book is about learning image representations **without labels** by *clustering*:
# a network invents its own classes, learns to predict them, and re-invents them as its
# features improve. Before any of that we need two things: data we can run on a laptop,
# and a fixed way to measure whether a representation is any good.
#
# **Learning goals.** After this chapter you can
# 1. load CIFAR-10, CIFAR-100 and SVHN as tensors with `labdata`, including the
#    class-balanced *lab subsets* every chapter uses;
# 2. state and compute the evaluation protocol of the book: weighted kNN, the linear
#    probe, and the clustering scores NMI, ARI, majority-vote and Hungarian accuracy;
# 3. explain what the three baselines — raw pixels, a random network, a supervised
#    network — tell us, and quote their measured numbers on the lab subset.
#
# Chapters 03-06 print their result next to this chapter's random-network baseline
# (recomputed with the same seed).

# %%
import time

import torch

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)

# The knobs of this chapter. Bigger budgets are one change away:
DATASET = "cifar10"      # "cifar100" or "svhn" work the same way
SUBSET = "lab"           # 10,000 train / 2,000 test images, class-balanced; None for the full set
SUPERVISED_EPOCHS = 8    # the training log prints each epoch's speed and time
chapter_start = time.time()

# %% [markdown]
# ## 1. The data
#
# `labdata.load(name, split, subset)` returns a `uint8` tensor of images `(N, 3, 32, 32)`,
# `int64` labels and the class names. The files come from the official sources through
# torchvision the first time (or from an image-folder copy named by `LABDATA_CIFAR10` and
# friends) and are then kept as a tensor file, so the next load skips the decoding.
#
# The **lab subset** takes the same number of images from every class, chosen by a fixed
# seeded permutation: everybody in a class works on exactly the same 10,000 training and
# 2,000 test images. The chosen indices are returned (`.indices`) and recorded.

# %%
train = labdata.load(DATASET, "train", subset=SUBSET)
test = labdata.load(DATASET, "test", subset=SUBSET)
print(train)
print(test)
print("images per class (train):", torch.bincount(train.labels).tolist())

# %%
# NBVAL_CHECK_OUTPUT
print(train.images.shape, train.images.dtype, train.labels.dtype)
print(test.images.shape, len(train.classes), "classes")

# %%
per_class = torch.cat([train.images[train.labels == c][:8] for c in range(len(train.classes))])
fig = sk.plot_image_grid(per_class, nrow=8, row_labels=train.classes, title=f"{DATASET}: 8 images per class")

# %% [markdown]
# **CIFAR-100** has the same images' format with 100 fine classes grouped into 20
# superclasses (`target="coarse"`). **SVHN** holds 32x32 crops of house-number digits;
# its `extra` split adds 531,131 easier images. Both load with the same call. (SVHN is
# downloaded from its official site; where it cannot be fetched, the cell says so.)

# %%
for name, kwargs in [("cifar100", {}), ("cifar100", {"target": "coarse"}), ("svhn", {})]:
    if not labdata.available(name, "test"):
        print(f"{name}: not available offline here; `python -m labdata fetch {name}` downloads it")
        continue
    d = labdata.load(name, "test", subset="lab", **kwargs)
    print(f"{name:9s} {kwargs.get('target', 'fine'):6s}: {len(d)} test images in the lab subset, "
          f"{d.num_classes} classes, e.g. {d.classes[:4]}")
    c100 = d

# %% [markdown]
# ## 2. The yardstick
#
# A self-supervised method hands us a feature extractor $f$. We freeze it and ask how
# well the classes can be read off the features, in two standard ways.
#
# **Weighted kNN** (Wu et al., 2018). With L2-normalised features, a test image $x$ finds
# the $k$ training images with the largest cosine similarity $s_i = f(x)^\top f(x_i)$;
# each votes for its label with weight $e^{s_i/\tau}$:
# $$\hat y(x) = \arg\max_c \sum_{i \in \mathrm{top}_k(x)} e^{s_i/\tau}\,[y_i = c],
# \qquad k = 200,\ \tau = 0.1 .$$
# It has no parameters to train, so it measures the geometry of the features directly.
#
# **Linear probe.** A multinomial logistic regression on the frozen, standardised
# features, fitted by L-BFGS with an L2 penalty chosen on a held-out fifth of the
# training set (the protocol of the CLIP paper, Radford et al. 2021). It asks whether the classes are *linearly*
# separable.
#
# A clustering method also hands us **cluster assignments** $a$, which we compare with the
# true labels $y$ by
# * **NMI** $= I(a; y) / \tfrac12 (H(a) + H(y))$ (the arithmetic normalisation, scikit-learn's
#   default; Strehl and Ghosh use the geometric mean), 1 for the same partition up to renaming;
# * **ARI**, the Rand index corrected for chance (0 in expectation for random assignments);
# * **majority-vote accuracy**: each cluster is labelled by its most frequent class
#   (many-to-one). It is the standard accuracy of an *over-clustering* ($K$ larger than the
#   number of classes, as every clustering method of this book uses); it rises with $K$ (every image its
#   own cluster would score 100 %), so it is read beside $K$ and NMI;
# * **Hungarian accuracy**: the accuracy after the best *one-to-one* map from clusters to
#   classes, only for a clustering with as many clusters as classes (with more clusters,
#   most stay unmatched and the accuracy is capped by the share of the images in the matched
#   clusters, classes / K when the clusters are equal).
#
# And it can cheat by putting everything in one cluster. The **collapse detector** is the
# entropy of the cluster sizes: $H = \ln K$ for equal clusters, $0$ for one cluster.
#
# **The protocol of this book.** The headline numbers of chapters 03–06, chapter 07's stored
# runs and the untrained baseline are measured the same way: features are the
# backbone's pooled output in evaluation mode; the kNN bank is the 10,000 training images of
# the lab subset with their labels, the queries its 2,000 test images ($k = 200$,
# $\tau = 0.1$); the linear probe is fitted on the same 10,000 and tested on the same 2,000;
# cluster scores are computed on the 2,000 test images — a method's own clusters with NMI,
# ARI and majority-vote accuracy, and for every network (trained or not) a k-means with
# $K$ = the number of classes on its L2-normalised training features, the test images taking
# their nearest centroid, with NMI, ARI and Hungarian accuracy (`sk.evaluate_method`).
# Side experiments that differ (a smaller bank, the NMI of pseudo-labels on the training
# images, chapter 08's own photos) say so where they do.
#
# ### kNN from scratch, then the library
# The whole classifier is a matrix product, a top-k and a scatter-add. We write it here
# and check that it agrees with `sk.knn_predict`, which the rest of the book uses.

# %%
def knn_from_scratch(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    train_f = train_f / train_f.norm(dim=1, keepdim=True)
    test_f = test_f / test_f.norm(dim=1, keepdim=True)
    sims, idx = (test_f @ train_f.T).topk(k, dim=1)          # (n_test, k)
    votes = torch.zeros(len(test_f), num_classes)
    votes.scatter_add_(1, train_y[idx], (sims / tau).exp())  # weighted votes per class
    return votes.argmax(1)


pixels_train = train.images.flatten(1).float() / 255
pixels_test = test.images.flatten(1).float() / 255
mine = knn_from_scratch(pixels_train, train.labels, pixels_test[:500], num_classes=len(train.classes))
theirs = sk.knn_predict(pixels_train, train.labels, pixels_test[:500], num_classes=len(train.classes))
assert torch.equal(mine, theirs), "the from-scratch kNN and sk.knn_predict disagree"
print("from-scratch kNN == sk.knn_predict on 500 test images")

# %% [markdown]
# ### NMI from scratch
# $I(a;y) = \sum_{i,j} p_{ij} \ln \frac{p_{ij}}{p_i\,p_j}$ from the table of joint frequencies.

# %%
def nmi_from_scratch(a, y):
    joint = torch.zeros(int(a.max()) + 1, int(y.max()) + 1, dtype=torch.float64)
    joint.index_put_((a, y), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = joint / joint.sum()
    pa, py = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mi = (p[nz] * (p[nz] / (pa * py)[nz]).log()).sum()
    h = lambda q: -(q[q > 0] * q[q > 0].log()).sum()
    return float(mi / (0.5 * (h(pa) + h(py))))


num_classes = len(train.classes)
# 30 % of the labels redrawn uniformly (a redraw can hit the true class: about 27 % end up wrong)
noisy = torch.where(torch.rand(len(test.labels)) < 0.3, torch.randint(0, num_classes, test.labels.shape), test.labels)
assert abs(nmi_from_scratch(noisy, test.labels) - sk.nmi(noisy, test.labels)) < 1e-9
print(f"NMI of labels with 30% redrawn ({(noisy != test.labels).float().mean() * 100:.1f}% wrong): "
      f"{sk.nmi(noisy, test.labels):.3f} "
      f"(ARI {sk.ari(noisy, test.labels):.3f}, Hungarian acc {sk.hungarian_accuracy(noisy, test.labels):.1f}%)")
collapsed = torch.zeros_like(test.labels)
print("one big cluster:", {k: round(v, 3) for k, v in sk.cluster_report(collapsed, num_classes).items() if k != "sizes"})

# %% [markdown]
# ## 3. Baseline 1: raw pixels
#
# The simplest "representation" is the image itself, a 3072-dimensional vector. Raw pixel
# values are all positive, so the cosine similarity of two raw images is high whatever they
# show; we also standardise each channel with the dataset's mean and standard deviation
# (which is what every network sees as input) and compare the two below.

# %%
mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in sk.DATASET_STATS[DATASET])
std_train = ((train.images.float() / 255 - mean) / std).flatten(1)
std_test = ((test.images.float() / 255 - mean) / std).flatten(1)
results = {}
results["raw pixels [0,1]"] = {"knn": sk.knn_accuracy(pixels_train, train.labels, pixels_test, test.labels)}
results["standardised pixels"] = {
    "knn": sk.knn_accuracy(std_train, train.labels, std_test, test.labels),
    "linear": sk.linear_probe(std_train, train.labels, std_test, test.labels)["test_acc"],
}
for k, v in results.items():
    print(k, {m: round(a, 1) for m, a in v.items()})

# %% [markdown]
# ## 4. Baseline 2: a random network
#
# A convolutional network with random weights is already a feature extractor of sorts:
# convolutions, pooling and ReLUs build in locality and some translation invariance.
# Any self-supervised method must beat *this*, not chance. Whether it beats the pixels
# depends on how we look: the cell below compares it with the standardised pixels under
# both evaluations and prints which one it wins. The lab backbone is a small
# ConvNet (4 conv-BN-ReLU blocks, 32-64-128-256 channels, global average pooling) that
# trains on two CPU cores at the rate the training log prints (images per second).

# %%
torch.manual_seed(0)
random_net = sk.build_backbone("convnet", dataset=DATASET).to(device)
f_train = sk.extract_features(random_net, train.images)
f_test = sk.extract_features(random_net, test.images)
results["random ConvNet"] = {
    "knn": sk.knn_accuracy(f_train, train.labels, f_test, test.labels),
    "linear": sk.linear_probe(f_train, train.labels, f_test, test.labels)["test_acc"],
}
print("random ConvNet", {m: round(a, 1) for m, a in results["random ConvNet"].items()})
for m, name in (("knn", "kNN"), ("linear", "linear probe")):
    a, b = round(results["random ConvNet"][m], 1), round(results["standardised pixels"][m], 1)   # as printed
    print(f"{name}: random ConvNet {a:.1f} % vs standardised pixels {b:.1f} % -> "
          f"{'the random network is ahead' if a > b else 'the pixels are ahead'} by {abs(a - b):.1f} points")

# %% [markdown]
# ## 5. Baseline 3: supervised training, the ceiling
#
# The same ConvNet trained *with* labels (cross-entropy, crop-and-flip augmentation) on
# the lab subset, for `SUPERVISED_EPOCHS` epochs (printed below), starting from the
# `supervised` method's `lab` preset, which is sized to train in about four minutes on 2 CPU
# cores, the lab budget every method gets in chapter 07 (which stores those runs; the preset's
# epochs are printed below). It
# runs in the training loop the self-supervised methods use (`sk.fit`). A short run like this
# one is a lower bound on the supervised ceiling.

# %%
cfg = sk.TrainConfig(method="supervised", dataset=DATASET)
sk.apply_preset(cfg, "lab")
cfg.epochs = SUPERVISED_EPOCHS
cfg.knn_every = 2
cfg.params = sk.METHODS["supervised"].Params(num_classes=len(train.classes))
model = sk.build_method(cfg, len(train))
history = sk.fit(model, train.images, cfg, device, labels=train.labels,
                 eval_data=(train.images, train.labels, test.images, test.labels))

# %%
s_train = sk.extract_features(model.backbone, train.images)
s_test = sk.extract_features(model.backbone, test.images)
with torch.no_grad():
    model.eval()
    head_acc = (model.head(s_test.to(device)).argmax(1).cpu() == test.labels).float().mean().item() * 100
results["supervised ConvNet"] = {
    "knn": sk.knn_accuracy(s_train, train.labels, s_test, test.labels),
    "linear": sk.linear_probe(s_train, train.labels, s_test, test.labels)["test_acc"],
}
print(f"supervised classifier test accuracy: {head_acc:.1f}% after {SUPERVISED_EPOCHS} epochs "
      f"(the lab preset trains {sk.apply_preset(sk.TrainConfig(method='supervised'), 'lab').epochs})")
fig = sk.plot_curves(history, {"loss": "cross-entropy on the training batches"}, ylabel="loss (per-epoch mean)",
                     title="supervised training loss")
fig = sk.plot_curves(history, {"train_acc": "training batches (augmented)", "knn_acc": "kNN on the test images"},
                     ylabel="accuracy (%)", title="supervised ConvNet: accuracy during training")

# %% [markdown]
# ## 6. The yardstick table
#
# These are the book's reference points (measured by this notebook); chapters 03-06
# recompute the random network's kNN with the same seed and print their result beside it.

# %%
print(f"{DATASET}, subset={SUBSET}: {len(train)} train / {len(test)} test images\n")
print(f"{'representation':24s} {'kNN (k=200)':>12s} {'linear probe':>13s}")
for name, r in results.items():
    lin = f"{r['linear']:.1f}" if "linear" in r else "-"
    print(f"{name:24s} {r['knn']:12.1f} {lin:>13s}")
yardstick = {name: r for name, r in results.items()}

# %%
# The claims of this chapter, checked on every run.
chance = 100 / len(train.classes)
assert results["standardised pixels"]["knn"] > 2 * chance
assert results["random ConvNet"]["knn"] > 2 * chance
assert results["supervised ConvNet"]["knn"] > results["random ConvNet"]["knn"] + 10
assert results["supervised ConvNet"]["linear"] > results["random ConvNet"]["linear"]
# the summary's reading of section 4: for a linear classifier the random features beat the pixels
assert results["random ConvNet"]["linear"] > results["standardised pixels"]["linear"] + 3
assert results["random ConvNet"]["knn"] < results["standardised pixels"]["knn"] + 1  # ... but not for kNN

# %% [markdown]
# ## 7. What the features look like
#
# UMAP maps the 256-dimensional features of the test images to the plane, coloured by
# class. Compare how tightly each class gathers in the two panels with the two networks'
# kNN accuracies in the table of section 6: neighbourhoods that hold one class are what a high kNN accuracy means.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
sk.plot_umap(f_test, test.labels, title="random ConvNet", ax=axes[0])
sk.plot_umap(s_test, test.labels, test.classes, title="supervised ConvNet", ax=axes[1])
fig.tight_layout()
print(f"chapter ran in {time.time() - chapter_start:.0f} s")

# %% [markdown]
# ## Summary
#
# * `labdata.load` gives every chapter the same tensors, offline once fetched; the lab
#   subset is 10,000 training and 2,000 test images, class-balanced and fixed.
# * We judge a representation by weighted kNN (k=200, τ=0.1) and a linear probe on frozen
#   features; clusterings by NMI, ARI and majority-vote accuracy (Hungarian accuracy when
#   there are as many clusters as classes), and by the entropy of the cluster sizes, which
#   exposes collapse. One protocol (section 2) serves the whole book.
# * A random ConvNet is the floor a self-supervised method has to clear, not chance: its
#   features are no better neighbourhoods than standardised pixels for kNN on this run
#   (asserted: the random net is not ahead by more than a point; section 4 prints the gap), but
#   a linear classifier reads more out of them (asserted: by more than 3 points; both printed
#   in section 4); the
#   supervised network shows how far there is to go.

# %% [markdown]
# ## References
#
# * Z. Wu, Y. Xiong, S. X. Yu, D. Lin. *Unsupervised feature learning via non-parametric
#   instance discrimination.* CVPR 2018 — the weighted kNN evaluation (k = 200; τ = 0.1 as in
#   the official CIFAR code).
#   [arXiv:1805.01978](https://arxiv.org/abs/1805.01978); code:
#   [zhirongw/lemniscate.pytorch](https://github.com/zhirongw/lemniscate.pytorch).
# * A. Krizhevsky. *Learning multiple layers of features from tiny images.* Tech. report, 2009
#   (CIFAR-10/100). [PDF](https://www.cs.toronto.edu/~kriz/learning-features-2009-TR.pdf).
# * Y. Netzer et al. *Reading digits in natural images with unsupervised feature learning.*
#   NIPS workshop 2011 (SVHN). [dataset page](http://ufldl.stanford.edu/housenumbers/).
# * A. Radford et al. *Learning transferable visual models from natural language supervision.*
#   ICML 2021 (the linear-probe protocol). [arXiv:2103.00020](https://arxiv.org/abs/2103.00020).
# * A. Strehl, J. Ghosh. *Cluster ensembles.* JMLR 3, 2002 (NMI).
#   [paper](https://www.jmlr.org/papers/v3/strehl02a.html).
# * L. Hubert, P. Arabie. *Comparing partitions.* Journal of Classification 2, 1985 (ARI).
#   [doi:10.1007/BF01908075](https://doi.org/10.1007/BF01908075).
# * H. W. Kuhn. *The Hungarian method for the assignment problem.* Naval Research Logistics
#   Quarterly 2, 1955 (cluster accuracy). [doi:10.1002/nav.3800020109](https://doi.org/10.1002/nav.3800020109).
# * The data come through [torchvision.datasets](https://pytorch.org/vision/stable/datasets.html).

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


# %% [markdown]
# **Exercise 1 — the weighted kNN vote [4 points].** Implement the yardstick's classifier
# (Wu et al. 2018) `weighted_knn(train_f, train_y, test_f, k, tau, num_classes)`: L2-normalise
# the features, take each test feature's `k` most cosine-similar training features (all of
# them if there are fewer than `k`), give neighbour $j$ the weight $\exp(s_j / \tau)$, sum the
# weights per class and predict the class with the largest sum (on a tie, the smallest
# class index). Return the predictions, an int64 tensor. No `sk.knn_predict`.

# %%
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    ...


# %% [markdown]
# **Exercise 2 — accuracy of a clustering [3 points].** Implement
# `hungarian_accuracy(pred, true)`: the fraction (in %) of images whose cluster, mapped to a
# class by the best *one-to-one* map from clusters to classes, is their class. Clusters
# left without a class (more clusters than classes) count as wrong. Build the
# cluster-by-class count matrix and use `scipy.optimize.linear_sum_assignment`.
# No `sk.hungarian_accuracy`.

# %%
def hungarian_accuracy(pred, true):
    ...


# %% [markdown]
# **Exercise 3 — entropy of the cluster sizes [1 point].** 10,000 images fall into 10
# clusters of sizes 5,500, 500, 500, ..., 500. What is the entropy of the cluster sizes, in
# nats (compute it by hand from $H = -\sum_k p_k \ln p_k$)? Give the number (3 decimals).

# %%
size_entropy = ...

# %% [markdown]
# **Exercise 4 — NMI of a collapsed clustering [1 point].** A clustering puts all 2,000
# lab test images into one cluster. The test set has 10 classes of 200 images. What is the
# NMI of this clustering with the classes? Think about what one cluster tells you about
# the class. Give the number.

# %%
nmi_collapsed = ...

# %% [markdown]
# **Exercise 5 (open, not graded).** In the book's chapter 00 notebook
# (`chapters/00_tour_and_yardstick.ipynb`), set `DATASET = "cifar100"` and re-run it. Which
# baseline loses the most accuracy relative to chance, and why?
