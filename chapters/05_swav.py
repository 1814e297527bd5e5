# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 05 — SwAV: online clustering with swapped assignments
#
# SeLa (chapter 03) and DeepCluster (chapter 04) are *offline*: every so often they stop,
# pass over the whole data set and relabel it. SwAV (Caron, Misra, Mairal, Goyal,
# Bojanowski and Joulin, *Unsupervised learning of visual features by contrasting cluster
# assignments*, NeurIPS 2020) clusters *online*: each mini-batch is assigned to a set of
# learned prototypes by a few Sinkhorn iterations, and one view of an image must predict
# the assignment ("code") of another view.
#
# **Learning goals.** After this chapter you can
# 1. derive SwAV's codes as the equipartitioned transport problem of chapter 02, solved on
#    a batch, and implement the 3-iteration Sinkhorn loop that computes them;
# 2. write the swapped-prediction loss and say why it "contrasts cluster assignments";
# 3. explain the roles of epsilon, of the queue (batch smaller than the prototypes) and of
#    multi-crop, and what each costs;
# 4. recognise SwAV's collapse (the loss stuck at $\ln K$), reproduce it and fix it;
# 5. train SwAV on the CIFAR-10 lab subset and compare it with chapter 00's yardstick and
#    with SeLa.

# %%
import math
import time
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
DATASET = "cifar10"   # "cifar100" or "svhn" work the same way
SWAV_EPOCHS = 12      # the lab budget (about 3.5 minutes on 2 CPU cores); more epochs, better features
K = 100               # prototypes (the lab preset; the paper uses 3000 on ImageNet and CIFAR)

# %%
train = labdata.load(DATASET, "train", subset="lab")
test = labdata.load(DATASET, "test", subset="lab")
print(train, test, sep="\n")

# %% [markdown]
# ## 1. Codes on a mini-batch need the equipartition
#
# A batch of $B$ images gives unit vectors $z_1..z_B \in \mathbb R^d$ (backbone, projection
# head, L2 normalisation). The $K$ prototypes $c_1..c_K$ are unit vectors too, so
# $z_b^\top c_k$ is a cosine similarity. SwAV's code $q_b \in \Delta_K$ says how image $b$
# is spread over the prototypes. The codes of the batch, as a $B \times K$ matrix $Q$ with
# rows summing to $1/B$, solve
#
# $$\max_{Q \in \mathcal U} \;\operatorname{Tr}(Q^\top Z C^\top) + \varepsilon H(Q), \qquad
# \mathcal U = \Big\{Q \ge 0 :\; Q\mathbf 1_K = \tfrac1B \mathbf 1_B,\; Q^\top \mathbf 1_B = \tfrac1K \mathbf 1_K\Big\}.$$
#
# This is chapter 02's transport problem with scores $S = ZC^\top$ in place of $\log P$, and
# chapter 03's Sinkhorn solves it: $Q = \operatorname{diag}(a)\, \exp(ZC^\top/\varepsilon)\,
# \operatorname{diag}(b)$, i.e. $\lambda = 1/\varepsilon$. Without the column constraint
# the maximiser puts every image on its single best prototype — and a network trained to
# predict such codes can make *all* images pick the same prototype: the collapse of
# chapter 01. The column constraint forces every prototype to take $B/K$ images' worth of
# mass in *every batch*. SwAV runs only 3 iterations and keeps the codes soft (rows
# rescaled to sum to one), with no gradient through them.
#
# From scratch, SwAV's loop (rows = samples, as everywhere in `sslkit`):

# %%
def swav_codes_from_scratch(scores, eps=0.05, iters=3):
    q = torch.exp(scores / eps)
    q = q / q.sum()                     # total mass 1
    B, K = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / K   # every prototype gets 1/K
        q = q / q.sum(1, keepdim=True) / B   # every image gives 1/B
    return q * B                        # rows sum to 1: the codes


torch.manual_seed(0)
net = sk.build_backbone("convnet", dataset=DATASET).to(device)
projector = torch.nn.Linear(net.dim, 64).to(device)
prototypes = F.normalize(torch.randn(K, 64, device=device), dim=1)
with torch.no_grad():
    z = F.normalize(projector(net(sk.to_float(train.images[:256].to(device)))), dim=1)
scores = z @ prototypes.t()
q_ours = swav_codes_from_scratch(scores)
q_lib = sk.swav_codes(scores, epsilon=0.05, iterations=3)
assert torch.allclose(q_ours, q_lib, atol=1e-5)
print("from-scratch codes == sk.swav_codes:", torch.allclose(q_ours, q_lib, atol=1e-5))

# %% [markdown]
# Compare with the codes a plain softmax would give ("assign each image to what it is
# closest to"). On a random network the features of all images are similar, so a few
# prototypes win everything; Sinkhorn spreads the batch over all of them.

# %%
plain = torch.softmax(scores / 0.05, dim=1)
use_plain, use_sk = plain.sum(0).cpu(), q_lib.sum(0).cpu()
fig, ax = plt.subplots(figsize=(9, 2.8))
order = torch.argsort(use_plain, descending=True)
ax.bar(range(K), use_plain[order], label="softmax codes")
ax.bar(range(K), use_sk[order], alpha=0.7, label="Sinkhorn codes (3 iterations)")
ax.axhline(256 / K, color="k", lw=0.8, ls="--", label="B/K")
ax.set_xlabel("prototype (sorted by softmax usage)"); ax.set_ylabel("mass of the batch"); ax.legend()
print(f"largest prototype share: softmax {use_plain.max() / 256:.1%}, Sinkhorn {use_sk.max() / 256:.1%} (1/K = {1 / K:.1%})")
assert use_sk.max() < use_plain.max()

# %% [markdown]
# ## 2. Swapped prediction
#
# Two augmentations $s, t$ of an image give $z_s, z_t$ and codes $q_s, q_t$. Each view
# predicts the *other* view's code from its own prototype scores:
#
# $$L(z_t, z_s) = \ell(z_t, q_s) + \ell(z_s, q_t), \qquad
# \ell(z_t, q_s) = -\sum_k q_s^{(k)} \log p_t^{(k)}, \quad
# p_t^{(k)} = \frac{\exp(z_t^\top c_k/\tau)}{\sum_{k'} \exp(z_t^\top c_{k'}/\tau)}.$$
#
# Instead of contrasting features of different images directly (SimCLR), SwAV contrasts
# their *cluster assignments*: the views of one image must land on the same prototypes,
# while the equipartition makes different images land on different ones. The gradient
# reaches the network through $z_t$ and the prototypes through $c_k$; the codes are
# targets. With $V$ crops, codes come from the full-resolution crops only, and every other
# crop predicts each code (`sk.METHODS["swav"]`'s loss):

# %%
def swapped_loss_from_scratch(scores_per_crop, codes, tau):
    loss = 0.0
    for i, q in enumerate(codes):
        terms = [-(q * F.log_softmax(s / tau, dim=1)).sum(1).mean()
                 for v, s in enumerate(scores_per_crop) if v != i]
        loss += sum(terms) / len(terms)
    return loss / len(codes)


from sslkit.methods import swapped_prediction_loss  # noqa: E402  (the library's, used by the method)

g = torch.Generator().manual_seed(0)
crops = [torch.randn(8, 5, generator=g) for _ in range(4)]
codes = [sk.swav_codes(c) for c in crops[:2]]
assert torch.isclose(swapped_loss_from_scratch(crops, codes, 0.1), swapped_prediction_loss(crops, codes, 0.1))
print("from-scratch loss == library loss:", swapped_loss_from_scratch(crops, codes, 0.1).item())

# %% [markdown]
# ## 3. The role of epsilon
#
# $\varepsilon$ is the entropy weight. Small: codes close to one-hot (a hard, confident
# clustering of the batch); large: codes close to uniform, $q_b \approx \tfrac1K \mathbf 1$,
# and a uniform target carries no information — the loss is then at least $H(q) = \ln K$
# whatever the network does. The normalised row entropy $H(q_b)/\ln K$ of the codes of the
# batch above, as $\varepsilon$ grows:

# %%
epsilons = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0]
def code_entropy(q):
    return (-(q * q.clamp_min(1e-12).log()).sum(1).mean() / math.log(q.shape[1])).item()
ents = [code_entropy(sk.swav_codes(scores, eps)) for eps in epsilons]
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(epsilons, ents, "o-"); ax.axvline(0.05, color="k", ls="--", lw=0.8)
ax.set_xlabel("epsilon"); ax.set_ylabel("H(q) / ln K"); ax.set_title("codes of one batch (random network)")
for e, h in zip(epsilons, ents):
    print(f"epsilon {e:5}: code entropy {h:.3f}")
assert ents[-1] > 0.99 and ents[0] < ents[2] < ents[-1]

# %% [markdown]
# ## 4. The queue: when the batch is smaller than the prototypes
#
# Each prototype should receive $B/K$ images per batch. With $B = 32$ and $K = 100$ that is
# a third of an image: the constraint forces every code to be spread thin. The paper's fix
# for small batches is a **queue**: the features $z$ of the last few thousand images
# (stale, but cheap) join the Sinkhorn problem, and only the current batch's codes are
# used in the loss. Why a small batch hurts: a code row sums to 1 and a column to $B/K$, so
# no entry of a code can exceed $B/K$ — with $B=32$, $K=100$ no image may be assigned more
# than a third to any prototype, however clear the image is. `sslkit` refuses the setting
# with a message instead of training into a collapse:

# %%
cfg_small = sk.TrainConfig(method="swav", batch_size=32)
sk.set_value(cfg_small, "num_prototypes", str(K))
sk.set_value(cfg_small, "queue_length", "0")
refused = False
try:
    sk.METHODS["swav"].check_config(cfg_small)
except sk.ConfigError as err:
    print("ConfigError:", err)
    refused = True
assert refused

# %% [markdown]
# With a queue of $L$ stored features the bound becomes $(B+L)/K$; section 7 measures it on
# the trained network. In a run: `--params.queue_length=3840 --params.queue_start_epoch=15`
# (a multiple of the batch size; started once the features are no longer random, as in
# the paper).
#
# ## 5. Multi-crop
#
# Two full-resolution crops give the codes; $V$ extra low-resolution crops (16×16 here,
# 96×96 on ImageNet) only predict them. Each small crop costs about a quarter of a full
# one, so `2x32 + 4x16` costs about as much as three full crops and gives six views.

# %%
views = sk.multi_crop(train.images[:6].to(device), n_global=2, n_local=4, local_size=16)
sk.plot_image_grid(torch.cat([F.interpolate(v, size=32) for v in views]), nrow=6,
                   row_labels=["full 1", "full 2", "small 1", "small 2", "small 3", "small 4"],
                   title="one column per image: 2 full crops, 4 small crops (shown enlarged)")
plt.show()


def step_time(n_local, reps=3):
    cfg_t = sk.TrainConfig(method="swav", batch_size=128)
    sk.apply_preset(cfg_t, "lab")
    sk.set_value(cfg_t, "n_local", str(n_local))
    m = sk.build_method(cfg_t, len(train)).to(device)
    x, idx = train.images[:128].to(device), torch.arange(128, device=device)
    m.training_step(x, idx)[0].backward()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        m.training_step(x, idx)[0].backward()
    return (time.perf_counter() - t) / reps


t2, t6 = step_time(0), step_time(4)
print(f"one step, batch 128: 2 crops {t2 * 1e3:.0f} ms, 2+4 crops {t6 * 1e3:.0f} ms ({t6 / t2:.1f}x)")

# %% [markdown]
# The lab run below uses the two full crops only (multi-crop pays off over long runs;
# `--params.n_local=4` switches it on).
#
# ## 6. The collapse at ln K, on purpose
#
# Users of every SwAV implementation report runs whose loss sits at $\ln K$ from the start:
# the codes are uniform, the prototypes unused, the features learn nothing. A too-large
# epsilon is the quickest way there. Two short runs on 2,000 images (2 epochs each):
# epsilon 1.0, then the paper's 0.05. `sk.fit` warns loudly in the first.

# %%
def short_run(epsilon):
    cfg_s = sk.TrainConfig(method="swav")
    sk.apply_preset(cfg_s, "lab")
    cfg_s.epochs, cfg_s.knn_every, cfg_s.warmup_epochs = 3, 0, 0
    sk.set_value(cfg_s, "epsilon", str(epsilon))
    sk.set_value(cfg_s, "freeze_prototypes_steps", "0")
    m = sk.build_method(cfg_s, 2000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = sk.fit(m, train.images[:2000], cfg_s, device, log=None)
    return hist, [str(w.message) for w in caught if "ln K" in str(w.message)]


hist_bad, warn_bad = short_run(1.0)
hist_good, warn_good = short_run(0.05)
for name, h, w in (("epsilon 1.0 ", hist_bad, warn_bad), ("epsilon 0.05", hist_good, warn_good)):
    print(f"{name}: loss/ln K per epoch {[round(r['loss_over_lnK'], 3) for r in h]}, "
          f"code entropy {h[-1]['code_entropy']:.3f}, warned: {bool(w)}")
print("\nthe warning:", warn_bad[0] if warn_bad else None)
assert warn_bad and not warn_good
assert hist_bad[-1]["loss_over_lnK"] > 0.98 > hist_good[-1]["loss_over_lnK"]

# %% [markdown]
# The fixes, in order of what to try: a smaller epsilon; keep the prototypes frozen for
# the first iterations (`freeze_prototypes_steps`, the paper's first epoch) so that
# randomly initialised prototypes are not dragged together before the features mean
# anything; and the queue when $B$ is small compared with $K$.
#
# ## 7. SwAV on the lab subset
#
# The `lab` preset: the lab ConvNet, a 512-64 projection head, $K=100$ prototypes, batch
# 128, two 32×32 crops, $\varepsilon = 0.05$, $\tau = 0.1$, prototypes frozen for the first
# epoch, SGD with a one-epoch warm-up and cosine decay.

# %%
cfg = sk.TrainConfig(method="swav")
sk.apply_preset(cfg, "lab")
cfg.epochs, cfg.dataset, cfg.knn_every = SWAV_EPOCHS, DATASET, 3
sk.set_value(cfg, "num_prototypes", str(K))
swav = sk.build_method(cfg, len(train))
torch.manual_seed(0)
random_net = sk.build_backbone("convnet", dataset=DATASET).to(device)
random_knn = sk.knn_accuracy(sk.extract_features(random_net, train.images), train.labels,
                             sk.extract_features(random_net, test.images), test.labels)
t0 = time.time()
history = sk.fit(swav, train.images, cfg, device, eval_data=(train.images, train.labels, test.images, test.labels),
                 true_labels=train.labels)
swav_time = time.time() - t0

# %%
f_train, f_test = sk.extract_features(swav.backbone, train.images), sk.extract_features(swav.backbone, test.images)
swav_knn = sk.knn_accuracy(f_train, train.labels, f_test, test.labels)
swav_linear = sk.linear_probe(f_train, train.labels, f_test, test.labels)["test_acc"]
print(f"SwAV, {SWAV_EPOCHS} epochs in {swav_time:.0f} s: kNN {swav_knn:.1f}% ({swav_knn - random_knn:+.1f} over "
      f"the random network's {random_knn:.1f}%), linear probe {swav_linear:.1f}%")
print(f"prototype assignments vs classes: NMI {sk.nmi(swav.labels.cpu(), train.labels):.3f}; "
      f"prototypes used {sk.cluster_report(swav.labels.cpu(), K)['used_clusters']} of {K}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
sk.plot_curves(history, ["loss_over_lnK", "code_entropy"], ax=axes[0], title="loss / ln K and code entropy")
sk.plot_curves(history, ["knn_acc"], ax=axes[1], title="kNN monitor (%)")
fig.tight_layout()

# %%
assert swav_knn > random_knn + 5, (swav_knn, random_knn)
assert history[-1]["loss_over_lnK"] < history[0]["loss_over_lnK"]
assert sk.cluster_report(swav.labels.cpu(), K)["used_clusters"] > 0.9 * K   # no collapse

# %% [markdown]
# ### A longer budget
#
# The same preset for 100 epochs takes about 35 minutes on 2 CPU cores — run it once
# from the repository root, and this cell shows its result beside the live run (without
# it, the cell says so and the chapter goes on):
#
# ```bash
# python -m sslkit.train --method=swav --preset=lab --epochs=100 --output_dir=runs/swav-lab-100
# ```

# %%
long = sk.evaluate_run("../runs/swav-lab-100", train, test, device=device)   # None when the run is absent
if long is not None:
    print(f"{long['epochs']} epochs: kNN {long['knn_acc']:.1f}%, linear probe {long['linear_acc']:.1f}% "
          f"(live run, {SWAV_EPOCHS} epochs: kNN {swav_knn:.1f}%)")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    sk.plot_curves(long["metrics"], ["knn_acc"], ax=axes[0], title=f"{long['epochs']}-epoch run: kNN monitor (%)")
    sk.plot_curves(long["metrics"], ["loss_over_lnK", "code_entropy"], ax=axes[1], title="loss / ln K, code entropy")
    fig.tight_layout()

# %% [markdown]
# ### Prototypes as images
#
# Each prototype is a direction on the sphere; its nearest test images show what it has
# come to mean. Rows: eight prototypes, each with its eight most similar test images.

# %%
with torch.no_grad():
    z_test = torch.cat([swav.embed(sk.to_float(test.images[i:i + 500].to(device))) for i in range(0, len(test), 500)])
    sim = z_test @ swav.prototypes.weight.t()
usage = torch.bincount(sim.argmax(1).cpu(), minlength=K)
shown = torch.argsort(usage, descending=True)[:8]
top = sim[:, shown.to(sim.device)].topk(8, dim=0).indices.t().cpu()    # (8 prototypes, 8 images)
sk.plot_image_grid(test.images[top.reshape(-1)], nrow=8, row_labels=[f"c{int(k)}" for k in shown],
                   title="nearest test images of eight prototypes")
plt.show()
purity = sum((test.labels[row] == test.labels[row].mode().values).float().mean().item() for row in top) / 8
print(f"mean share of the majority class among a prototype's 8 nearest images: {purity:.0%} (chance about 10-20%)")

# %% [markdown]
# ### The queue, with the trained network
#
# Codes of 32 test images on their own, and with the features of 480 other images queued
# in the same Sinkhorn problem (`SwAV.codes` does this bookkeeping during training; here
# the concatenated problem is formed by hand). Alone, no entry can exceed $32/100$ once
# Sinkhorn has converged (the paper's three iterations leave the columns slightly off, so
# the bound holds approximately).

# %%
batch_z, queue_z = z_test[:32], z_test[32:512]
alone = sk.swav_codes(batch_z @ swav.prototypes.weight.t())
with_queue = sk.swav_codes(torch.cat([queue_z, batch_z]) @ swav.prototypes.weight.t())[-32:]
print(f"largest code entry: alone {alone.max():.2f} (bound B/K = 0.32), with the queue {with_queue.max():.2f}")
print(f"code entropy H/ln K: alone {code_entropy(alone):.3f}, with the queue {code_entropy(with_queue):.3f}")
assert alone.max() < 0.4 < with_queue.max()

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
sk.plot_umap(sk.extract_features(random_net, test.images), test.labels, title="random ConvNet", ax=axes[0])
sk.plot_umap(f_test, test.labels, test.classes, title=f"SwAV, {SWAV_EPOCHS} epochs", ax=axes[1])
fig.tight_layout()

# %% [markdown]
# ### Against the yardstick
#
# | representation (CIFAR-10 lab subset) | kNN | linear probe |
# |---|---|---|
# | random ConvNet (ch. 00) | 33.5 | 47.0 |
# | SeLa, lab budget (ch. 03) | 43.4 | 55.4 |
# | DeepCluster, lab budget (ch. 04) | 43.6 | 55.5 |
# | **SwAV, lab budget (this chapter)** | 45.6 | 56.7 |
# | supervised ConvNet (ch. 00) | 64.6 | 67.7 |
#
# In the lab budget (12 epochs, about 3.5 minutes on 2 CPU cores) SwAV gains 12 points of
# kNN accuracy over the random network, a little more than the offline methods at the same
# budget. The paper trains for hundreds of epochs with multi-crop (`python -m sslkit.train --method=swav --preset=cifar10` for the full recipe).
#
# ## Summary
#
# * SwAV computes codes online: 3 Sinkhorn iterations on $\exp(ZC^\top/\varepsilon)$ over
#   the batch — chapter 03's algorithm with $\lambda = 1/\varepsilon$ — equipartitioning
#   each batch over the prototypes.
# * The swapped-prediction loss makes each view predict another view's code; prototypes
#   are learned, unit-norm, and frozen for the first iterations.
# * Epsilon too large gives uniform codes and a loss stuck at $\ln K$; a batch smaller than
#   the prototypes needs the queue; multi-crop adds cheap low-resolution views.

# %% [markdown]
# ## Exercises
#
# These exercises are self-contained: they need no dataset and no training run. Replace
# every `...` with your code and run the cell; in the student edition (see the README's
# section for teachers) a check cell below each one runs its public tests. The grader also
# runs hidden tests on further inputs (random and edge cases). Points are in brackets.

# %%
import math

import torch
import torch.nn.functional as F

import sslkit as sk

torch.set_default_dtype(torch.float32)


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

# %%
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    ...


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

# %%
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    ...


# %% [markdown]
# **Exercise 3 — sizing the queue [1 point].** With batch size 64 and $K = 3000$
# prototypes, on one process, what is the smallest queue length that `sslkit` accepts? The
# batch plus the queue must hold at least $K$ images (otherwise the equipartition cannot
# hold), and the queue must hold at least one batch, since it shifts by one batch per step.

# %%
queue_length = ...

# %% [markdown]
# **Exercise 4 — the collapse value [1 point].** If $\varepsilon$ is far too large the
# codes are uniform, the network learns to predict uniformly, and the loss stops moving.
# At what value, for $K = 3000$ prototypes? Give the number (3 decimals).

# %%
collapse_value = ...
