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
# # Chapter 01 — Why naive self-labelling degenerates
#
# The dream of clustering-based self-supervision: let the network *invent* labels for
# unlabelled images and learn to predict them, exactly as in supervised learning. This
# chapter shows, by running it, that the obvious way to do this fails — the labelling
# collapses onto a few clusters (on a toy problem; a single one from one of its six seeds) or
# onto a single cluster (on CIFAR-10, from every seed tried) — and why.
#
# **Learning goals.** After this chapter you can
# 1. write the naive self-labelling objective and prove that a trivial labelling reaches its
#    infimum;
# 2. reproduce the collapse on a toy problem and on CIFAR-10, and measure it with the
#    entropy of the cluster sizes;
# 3. see that the k-means objective, optimised over the features too, has the same
#    trivial optimum;
# 4. name the two ways out the book studies: DeepCluster's alternation (chapter 04) and
#    SeLa's equipartition constraint (chapters 02-03).

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
DATASET = "cifar10"   # the CIFAR part also runs on "cifar100" or "svhn"
N_IMAGES = 2000       # images used in the CIFAR experiment (more: slower)
STEPS = 150           # optimisation steps of the toy experiments

# %% [markdown]
# ## 1. The objective and its trivial solution
#
# A network $\Phi$ with a linear head outputs class probabilities $p(y \mid x_i)$ over $K$
# invented classes. Supervised learning minimises the average cross-entropy with given
# labels $y_i$. Self-labelling would minimise the *same* objective over the labels too:
# $$
# \min_{\Phi,\; y_1, \dots, y_N}\; E(p, y) = -\frac1N \sum_{i=1}^N \log p(y_i \mid x_i).
# $$
# For fixed $\Phi$ the best labels are $y_i = \arg\max_y p(y \mid x_i)$; for fixed labels
# the network does supervised learning. But there is a free lunch: choose a single class
# $c$, set $y_i = c$ for every image and let the network output $p(c \mid x) \to 1$ whatever
# $x$ is (a growing bias on $c$ suffices). Then $E \to 0$, the infimum, and the
# "representation" carries no information about the image at all.
#
# Nothing in the objective prefers a meaningful labelling to this one. Let us watch
# gradient descent find it.
#
# ## 2. A toy problem
#
# Three well-separated Gaussian blobs in the plane; a small MLP with a head of $K = 10$
# invented classes (more clusters than blobs, as in practice). We alternate the two
# minimisations: labels by argmax, then a few gradient steps on the cross-entropy. This is
# the from-scratch naive self-labelling loop; we run it from six random initialisations.

# %%
x_toy, y_toy = labdata.make_blobs(n=600, k=3, std=0.6, seed=0)
K_TOY = 10


def naive_self_labelling(features, k, steps, inner=5, lr=0.1, seed=0):
    """Alternate labels = argmax p(y|x) and gradient steps on cross-entropy; return the history."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(features.shape[1], 32), nn.ReLU(), nn.Linear(32, k))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    history = []
    for step in range(steps):
        with torch.no_grad():
            labels = net(features).argmax(1)              # the best labels for this network
        for _ in range(inner):                              # then fit the network to them
            loss = F.cross_entropy(net(features), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        rep = sk.cluster_report(labels, k)
        history.append({"step": step, "loss": loss.item(), "entropy": rep["normalized_entropy"],
                        "largest": rep["largest_fraction"], "used": rep["used_clusters"]})
    return net, labels, history


runs = [naive_self_labelling(x_toy, K_TOY, STEPS, seed=s) for s in range(6)]
print("seed  clusters used (of 10)  largest cluster  final loss  NMI with blobs")
for s, (_, lab, hist) in enumerate(runs):
    print(f"{s:4d}  {hist[-1]['used']:21d}  {hist[-1]['largest']:15.2f}  {hist[-1]['loss']:10.4f}  "
          f"{sk.nmi(lab, y_toy):14.2f}")

# %%
collapsed_seed = min(range(6), key=lambda s: runs[s][2][-1]["used"])
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].scatter(x_toy[:, 0], x_toy[:, 1], c=y_toy, cmap="tab10", s=4)
axes[0].set_title("true blobs", fontsize=9)
axes[1].scatter(x_toy[:, 0], x_toy[:, 1], c=runs[0][1], cmap="tab10", s=4, vmin=0, vmax=9)
axes[1].set_title("self-labels, seed 0", fontsize=9)
sk.plot_curves(runs[collapsed_seed][2], {"entropy": "cluster-size entropy H / ln K",
                                         "largest": "share of the largest cluster", "loss": "cross-entropy loss"},
               xkey="step", xlabel="training step", ylabel="value", ax=axes[2],
               title=f"seed {collapsed_seed}: H/ln K, largest share, loss")
fig.tight_layout()

# %%
# The claims, checked: every run drives the loss to ~0 while most of the 10 clusters die,
# and one of them (collapsed_seed) ends with a single cluster for all 600 points.
assert all(hist[-1]["loss"] < 0.01 for _, _, hist in runs)
assert all(hist[-1]["used"] <= 3 for _, _, hist in runs)
assert runs[collapsed_seed][2][-1]["used"] == 1
labels_toy = runs[collapsed_seed][1]

# %% [markdown]
# The blobs could not be easier to cluster, yet of ten clusters at most three survive,
# and from one of the printed initialisations only one (the figure follows its largest
# cluster's share). The mechanism is rich-get-richer: every argmax step hands the popular
# classes more images, and the next gradient steps make the network prefer them further.
# The objective cannot tell these outcomes apart — all of them reach a loss of about zero,
# the single-cluster solution included.
#
# ## 3. The same on CIFAR-10, from a balanced start
#
# Now a real network on real images: the lab ConvNet with a linear head of $K=10$ outputs,
# trained on augmented views of `N_IMAGES` CIFAR-10 images by the same alternation. To see
# the *dynamics* rather than a collapse at the very first step, every run starts from a
# **balanced** labelling: a random equipartition, each of the ten labels on a tenth of the
# images (SeLa's starting point). The network trains on it for `RELABEL_EVERY` steps, then
# every image takes the label the network now prefers (the argmax), and so on. We follow the
# cluster-size entropy $H/\ln K$ (1: balanced, 0: one cluster) at every relabelling, for three
# seeds, and the gradient that reaches the backbone. Even from the balanced start the first
# relabelling removes most of the entropy (below half, asserted below); the rest goes over the next
# relabellings, not always monotonically.

# %%
train = labdata.load(DATASET, "train", subset="lab")  # a shuffled subset: its first images cover every class
images = train.images[:N_IMAGES].to(device)
true_labels = train.labels[:N_IMAGES]
print(f"{N_IMAGES} of the {len(train)} lab images, per class: {torch.bincount(true_labels).tolist()}")
K, RELABEL_EVERY, CIFAR_STEPS = 10, 5, 100


def self_label_cifar(seed):
    """The naive alternation on CIFAR images from a random equipartition; its history."""
    torch.manual_seed(seed)
    backbone = sk.build_backbone("convnet", dataset=DATASET).to(device)
    head = nn.Linear(backbone.dim, K).to(device)
    opt = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(N_IMAGES) % K)[torch.randperm(N_IMAGES, generator=g)].to(device)  # balanced start
    hist = []
    for step in range(CIFAR_STEPS + 1):
        if step % RELABEL_EVERY == 0:
            if step > 0:  # the labels the network now prefers
                with torch.no_grad():
                    labels = head(sk.extract_features(backbone, images)).argmax(1)
            rep = sk.cluster_report(labels.cpu(), K)
            hist.append({"step": step, "entropy": rep["normalized_entropy"], "largest": rep["largest_fraction"],
                         "nmi": sk.nmi(labels.cpu(), true_labels)})
        if step == CIFAR_STEPS:
            break
        idx = torch.randint(0, N_IMAGES, (128,), device=device)
        loss = F.cross_entropy(head(backbone(sk.augment_batch(images[idx]))), labels[idx])
        opt.zero_grad()
        loss.backward()
        grad = torch.sqrt(sum(p.grad.pow(2).sum() for p in backbone.parameters() if p.grad is not None)).item()
        opt.step()
        if step % RELABEL_EVERY == 0:
            hist[-1].update(loss=loss.item(), backbone_grad=grad)
    return hist


cifar_runs = {seed: self_label_cifar(seed) for seed in range(3)}
print("H / ln K at each relabelling (every", RELABEL_EVERY, "steps):")
for seed, hist in cifar_runs.items():
    print(f"  seed {seed}:", " ".join(f"{h['entropy']:.2f}" for h in hist))
hist_cifar = cifar_runs[0]

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
for seed, hist in cifar_runs.items():
    ax[0].plot([h["step"] for h in hist], [h["entropy"] for h in hist], marker="o", ms=3, label=f"seed {seed}")
ax[0].set(xlabel="training step", ylabel="cluster-size entropy H / ln K", ylim=(-0.03, 1.03),
          title="from a balanced start: the labelling's entropy falls")
ax[0].legend(fontsize=8)
sk.plot_curves(hist_cifar[:-1], {"loss": "cross-entropy loss", "backbone_grad": "gradient norm at the backbone"},
               xkey="step", xlabel="training step", ylabel="value", ax=ax[1],
               title="seed 0: loss and gradient norm at the backbone")
fig.tight_layout()

# %%
# the claims below, checked on every seed
steps_to = {}
for seed, hist in cifar_runs.items():
    ent = [h["entropy"] for h in hist]
    assert ent[0] > 0.99, "the start is balanced"
    assert ent[1] < 0.5, "the text says the first relabelling removes most of the entropy"
    assert ent[-1] < 0.1 and hist[-1]["largest"] > 0.9, f"seed {seed}: expected the labelling to collapse"
    assert hist[-1]["nmi"] < 0.05
    steps_to[seed] = next(h["step"] for h in hist if h["entropy"] < 0.1)
    falling = sum(b < a for a, b in zip(ent, ent[1:]))
    print(f"seed {seed}: H/ln K below 0.1 after {steps_to[seed]} steps ({len(ent) - 1} relabellings, the entropy fell "
          f"at {falling} of them); largest cluster {hist[-1]['largest']:.0%} at the end")
first_grad = hist_cifar[0]["backbone_grad"]
last_grad = hist_cifar[-2]["backbone_grad"]
assert last_grad < 0.1 * first_grad
print(f"seed 0, gradient norm at the backbone: {first_grad:.3g} at the first step, {last_grad:.3g} at step "
      f"{hist_cifar[-2]['step']} ({first_grad / max(last_grad, 1e-12):.0f}x smaller)")

# %% [markdown]
# The balanced start does not last. Relabelling by relabelling the popular labels tend to gain images —
# the network's preference after a few steps of training is not balanced, and its argmax
# hands the slightly larger classes more images, which the next steps learn to prefer
# further — and the entropy falls (printed: the relabellings at which it fell, and the step
# at which it dropped below 0.1, on each seed). All three seeds end with almost every image
# in one cluster (asserted: above 90 %), which says nothing about the classes (NMI below
# 0.05). The loss falls (right panel) while the gradient reaching the backbone shrinks by the
# factor printed above (asserted: to below a tenth of its first value): once one label
# holds every image, the head can fit it on its own, and almost nothing is learned.
#
# ## 4. k-means has the same trivial optimum
#
# DeepCluster clusters *features* with k-means rather than predicting labels, so one might
# hope to escape. The k-means objective, minimised over the assignments, the centroids
# **and the features** $f_\theta(x_i)$,
# $$
# \min_{\theta,\, \mu,\, y}\; \frac1N \sum_i \lVert f_\theta(x_i) - \mu_{y_i} \rVert^2 ,
# $$
# is zero for a network that maps every image to one point: $f_\theta(x) = \mu_1$. We run
# gradient descent on the features (with the assignments and centroids recomputed) and
# see the features shrink onto the centroids: the objective goes to about zero by
# shrinking the features (their total variance is printed), the first step towards mapping
# every image to one point.

# %%
torch.manual_seed(0)
enc = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
opt_k = torch.optim.SGD(enc.parameters(), lr=0.05)
kmeans_hist = []
for step in range(STEPS):
    z = enc(x_toy)
    with torch.no_grad():
        centres = z[torch.randperm(len(z))[:3]] if step == 0 else centres
        assign = torch.cdist(z, centres).argmin(1)
        centres = torch.stack([z[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(3)])
    loss = (z - centres[assign]).pow(2).sum(1).mean()
    opt_k.zero_grad()
    loss.backward()
    opt_k.step()
    kmeans_hist.append({"step": step, "kmeans_loss": loss.item(), "feature_var": z.var(0).sum().item()})
print(f"k-means loss {kmeans_hist[0]['kmeans_loss']:.3f} -> {kmeans_hist[-1]['kmeans_loss']:.5f}; "
      f"feature variance {kmeans_hist[0]['feature_var']:.3f} -> {kmeans_hist[-1]['feature_var']:.5f}")
fig = sk.plot_curves(kmeans_hist, {"kmeans_loss": "k-means loss (mean squared distance to the centroid)",
                                   "feature_var": "total variance of the features"}, xkey="step",
                     xlabel="training step", ylabel="value", title="learning the features for k-means: both go to zero")
assert kmeans_hist[-1]["kmeans_loss"] < 0.05 * kmeans_hist[0]["kmeans_loss"]
assert kmeans_hist[-1]["feature_var"] < 0.05 * kmeans_hist[0]["feature_var"]

# %% [markdown]
# ## 5. Two ways out
#
# * **DeepCluster** (chapter 04) never optimises the features for the clustering
#   objective directly. It alternates: cluster *fixed* features with k-means, then train
#   the network with cross-entropy on those pseudo-labels, with a freshly initialised
#   head, sampling uniformly over clusters so a big cluster cannot take over, and
#   re-seeding empty clusters. Several safeguards against the collapse you saw above.
# * **SeLa** (chapters 02-03) keeps the cross-entropy objective but adds a constraint:
#   the labels must split the data into **equal parts**. Then "everything in one cluster"
#   is not allowed, and the label step becomes an optimal-transport problem solved by
#   Sinkhorn-Knopp.
#
# A preview of the second (one seed, a preview rather than a controlled comparison with
# section 2's ten clusters): the same toy loop with K = 3 clusters (one per blob), the labels
# chosen by `sk.sela_labels` (Sinkhorn's approximately equipartitioned transport plan, rounded
# by the argmax; chapter 03) instead of the argmax of the network alone.

# %%
torch.manual_seed(0)
net2 = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
opt2 = torch.optim.SGD(net2.parameters(), lr=0.1, momentum=0.9)
for step in range(STEPS):
    with torch.no_grad():
        labels_ot, _ = sk.sela_labels(F.log_softmax(net2(x_toy), 1), lam=25.0)
    for _ in range(5):
        loss = F.cross_entropy(net2(x_toy), labels_ot)
        opt2.zero_grad()
        loss.backward()
        opt2.step()
print("cluster sizes (near-equal):", sk.cluster_sizes(labels_ot, 3).tolist(),
      f" NMI with the true blobs: {sk.nmi(labels_ot, y_toy):.3f}")
assert sk.cluster_report(labels_ot, 3)["normalized_entropy"] > 0.95
assert sk.nmi(labels_ot, y_toy) > 0.8

# %% [markdown]
# ## Summary
#
# * Minimising cross-entropy over the network *and* the labels has a trivial solution: one
#   label for all images and a growing bias on it drive the loss to its infimum 0. Alternating argmax
#   labels and gradient steps drives the loss to about zero with few clusters left on toy
#   blobs (a single cluster from at least one seed, asserted); on CIFAR-10, from a balanced start,
#   the labels' entropy falls below half at the first relabelling (asserted) and then,
#   not always monotonically, to below a tenth, with one cluster holding at least 90 % of the
#   images at the end, on every seed (asserted).
# * The entropy of the cluster sizes (`sk.cluster_report`) detects the collapse; the
#   vanishing gradient at the backbone shows that the representation stops learning.
# * Learning features for the k-means objective shrinks them towards a point, the same
#   trivial optimum.
# * Constraining the labels to an equal split (SeLa) or decoupling clustering from
#   feature learning with safeguards (DeepCluster) are the two ways out.

# %% [markdown]
# ## References
#
# * Y. M. Asano, C. Rupprecht, A. Vedaldi. *Self-labelling via simultaneous clustering and
#   representation learning.* ICLR 2020 — section 3 on the degenerate solution of joint
#   cross-entropy minimisation. [arXiv:1911.05371](https://arxiv.org/abs/1911.05371); code:
#   [yukimasano/self-label](https://github.com/yukimasano/self-label).
# * M. Caron, P. Bojanowski, A. Joulin, M. Douze. *Deep clustering for unsupervised learning
#   of visual features.* ECCV 2018 — section 3.3 on trivial solutions (empty clusters,
#   trivial parametrisation). [arXiv:1807.05520](https://arxiv.org/abs/1807.05520); code:
#   [facebookresearch/deepcluster](https://github.com/facebookresearch/deepcluster).

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


# %% [markdown]
# **Exercise 1 — detect collapse from a label history [4 points].** A self-labelling run
# records its hard labels after every relabelling: `history` is a list of (N,) int tensors
# with values in $0..K-1$. Implement `first_collapse(history, k, threshold)`: the index of
# the first labelling whose *normalised* cluster-size entropy
# $H(\text{sizes}) / \ln K$ (with $0 \ln 0 = 0$) is below `threshold`, or `None` if there is
# none (an empty history included). Count sizes over all $K$ clusters, empty ones too.

# %%
def first_collapse(history, k, threshold=0.5):
    ...


# %% [markdown]
# **Exercise 2 — how much the labels move [4 points].** The training loop's logs also compare
# each labelling with the previous one by their normalised mutual information (`nmi_prev` in a
# run's metrics; chapter 08 plots it). Implement `nmi(a, b)` for
# two hard labellings of the same images: with the joint distribution
# $p(x, y) = n_{xy}/N$ of the contingency table, $I = \sum_{xy} p(x,y) \ln \frac{p(x,y)}{p(x)p(y)}$
# and $\mathrm{NMI} = I / \tfrac12 (H(a) + H(b))$; by convention 1 when both labellings are
# constant and 0 when only one is. Return a float. No `sk.nmi`.

# %%
def nmi(a, b):
    ...


# %% [markdown]
# **Exercise 3 — the loss of a network that ignores its input [1 point].** It outputs the
# uniform distribution over $K = 10$ classes for every image. What is the naive objective
# $E(p, y)$ (the mean cross-entropy) for *any* labelling $y$? Give the number.

# %%
uniform_loss = ...

# %% [markdown]
# **Exercise 4 — how collapsed is "three clusters left"? [1 point].** Suppose a toy
# self-labelling run on 600 points with $K = 10$ clusters ended with 3 clusters of 200 (and 7
# empty ones). What is the normalised entropy $H(\text{sizes}) / \ln K$? Give the number (3 decimals).

# %%
normalized_entropy = ...
