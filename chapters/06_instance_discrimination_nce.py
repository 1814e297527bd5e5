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
# # Chapter 06 — Instance discrimination with an NCE memory bank
#
# The clustering methods of chapters 03-05 invent $K$ classes. Wu, Xiong, Yu and Lin
# (*Unsupervised feature learning via non-parametric instance discrimination*, CVPR 2018)
# push the idea to its extreme: **every image is its own class** — $N$ classes for $N$
# images — and the network learns features that tell all of them apart. Two tricks make
# this affordable: a *memory bank* holding one feature per image, and *noise-contrastive
# estimation* (NCE) in place of the $N$-way softmax. Its weighted kNN classifier is the
# yardstick the whole book uses.
#
# **Learning goals.** After this chapter you can
# 1. write the non-parametric softmax over instances and its gradient, and say why a
#    parametric classifier with $N$ outputs is the wrong tool;
# 2. derive the NCE loss and the Monte-Carlo estimate of the normaliser $Z$;
# 3. implement the memory bank's momentum update and explain its staleness;
# 4. describe the effect of $m$ (noise samples), $\tau$ and the momentum;
# 5. train instance discrimination on the CIFAR-10 lab subset and compare it with the
#    clustering methods.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
DATASET = "cifar10"   # "cifar100" or "svhn" work the same way
NPID_EPOCHS = 20      # the lab budget (about 2.5 minutes on 2 CPU cores); more epochs, better features

# %%
train = labdata.load(DATASET, "train", subset="lab")
test = labdata.load(DATASET, "test", subset="lab")
N = len(train)
print(train, test, sep="\n")

# %% [markdown]
# ## 1. Every image its own class: the non-parametric softmax
#
# A parametric classifier with one weight vector $w_i$ per image,
# $P(i \mid x) = \exp(w_i^\top f)/\sum_j \exp(w_j^\top f)$, learns $w_i$ from a single
# image and cannot compare two images directly. Wu et al. replace $w_i$ by the image's own
# (unit-norm) feature $v_i$:
#
# $$P(i \mid f) = \frac{\exp(v_i^\top f / \tau)}{Z(f)}, \qquad Z(f) = \sum_{j=1}^N \exp(v_j^\top f / \tau),$$
#
# with $f = f_\theta(x_i)/\lVert f_\theta(x_i) \rVert$ the feature of (an augmentation of)
# image $i$ and $\tau$ a temperature (0.07 in the paper). The loss
# $-\log P(i \mid f_i)$ has the gradient
#
# $$\frac{\partial}{\partial f}\bigl(-\log P(i \mid f)\bigr) = -\frac1\tau\Bigl(v_i - \sum_j P(j \mid f)\, v_j\Bigr):$$
#
# pull $f$ towards its own entry, push it away from the others in proportion to how
# confusable they are. Computing $v_j$ for all $N$ images at every step is impossible, so
# the $v_j$ live in a **memory bank**: after each step, image $i$'s entry is refreshed,
#
# $$v_i \leftarrow \frac{\mu\, v_i + (1-\mu) f_i}{\lVert \mu\, v_i + (1-\mu) f_i \rVert}, \qquad \mu = 0.5,$$
#
# so the bank is at most one epoch old. Still, $Z$ costs $N$ dot products per image (1.28M
# on ImageNet). From scratch, on a random network's features:

# %%
torch.manual_seed(0)
npid_cfg = sk.TrainConfig(method="npid")
sk.apply_preset(npid_cfg, "lab")
probe = sk.build_method(npid_cfg, N).to(device)
probe.init_bank_from_features(train.images.to(device))   # bank = the untrained network's features
bank = probe.bank
with torch.no_grad():
    f = probe.embed(sk.augment_batch(train.images[:256].to(device), probe.aug)).float()
idx = torch.arange(256, device=device)
tau = 0.07

def exact_loss_from_scratch(f, idx, bank, tau):
    logits = f @ bank.t() / tau                             # (B, N) similarities to every instance
    log_z = torch.logsumexp(logits, dim=1)                  # log Z(f), stably
    return (log_z - logits[torch.arange(len(f)), idx]).mean()

ours, lib = exact_loss_from_scratch(f, idx, bank, tau), sk.exact_instance_loss(f, idx, bank, tau)
assert torch.isclose(ours, lib, rtol=1e-5)
print(f"exact instance loss {ours.item():.3f} (ln N = {math.log(N):.3f}); library: {lib.item():.3f}")

# %% [markdown]
# ## 2. Noise-contrastive estimation
#
# NCE turns the $N$-way problem into a binary one: is a bank vector the data's (the
# positive $v_i$) or one of $m$ *noise* samples drawn uniformly, $P_n(j) = 1/N$? With
# $P(j \mid f)$ as above, the posterior that $j$ came from the data is
#
# $$h(j, f) = \frac{P(j \mid f)}{P(j \mid f) + m P_n(j)},$$
#
# and the loss for image $i$ with noise samples $j_1..j_m$ is
#
# $$L_{NCE} = -\log h(i, f) - \sum_{k=1}^m \log\bigl(1 - h(j_k, f)\bigr).$$
#
# Only $1+m$ dot products. $Z$ would still need all $N$; NCE treats it as a constant,
# estimated once by Monte Carlo over the noise samples of the first batch,
# $Z \approx N \cdot \tfrac{1}{m}\sum_k \exp(v_{j_k}^\top f/\tau)$, and then fixed. From
# scratch, against the library:

# %%
def nce_loss_from_scratch(f, idx, noise, bank, tau, z, n):
    m = noise.shape[1]
    p_pos = torch.exp((f * bank[idx]).sum(1) / tau) / z                   # P(i|f)
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise]) / tau) / z
    h_pos = p_pos / (p_pos + m / n)
    h_noise = p_noise / (p_noise + m / n)
    return -(torch.log(h_pos) + torch.log(1 - h_noise).sum(1)).mean()

g = torch.Generator(device="cpu").manual_seed(0)
f64, idx64 = f[:64], idx[:64]
noise = sk.sample_noise(64, 4096, N, "cpu", g).to(device)   # m = 4096 per image, as in the paper
scores = sk.nce_scores(f64, idx64, noise, bank, tau)
z = sk.monte_carlo_normalizer(scores[:, 1:], N)
ours, lib = nce_loss_from_scratch(f64, idx64, noise, bank, tau, z, N), sk.nce_loss(scores, z, N)
assert torch.isclose(ours, lib, rtol=1e-4)
print(f"Monte-Carlo Z = {z:.4g}, exact mean Z = {sk.exact_normalizer(f64, bank, tau).mean().item():.4g}; "
      f"NCE loss {ours.item():.3f} (library {lib.item():.3f})")

# %% [markdown]
# ### How many noise samples?
#
# The Monte-Carlo estimate of $Z(f)$ from $m$ uniform samples has a relative error that
# shrinks like $1/\sqrt m$. On the bank above (10,000 instances):

# %%
ms = [16, 64, 256, 1024, 4096, 10000]
errs = [sum(sk.nce_estimate_error(f, bank, tau, m, torch.Generator(device="cpu").manual_seed(s)) for s in range(3)) / 3
        for m in ms]
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(ms, errs, "o-", label="measured")
ax.loglog(ms, [errs[0] * math.sqrt(ms[0] / m) for m in ms], "k--", lw=0.8, label=r"$\propto 1/\sqrt{m}$")
ax.set_xlabel("noise samples m"); ax.set_ylabel("relative error of Z"); ax.legend()
for m, e in zip(ms, errs):
    print(f"m = {m:6d}: relative error of the Monte-Carlo Z {e:.3f}")
assert errs[-1] < errs[2] < errs[0]

# %% [markdown]
# ## 3. Temperature and momentum
#
# **$\tau$** sets how peaked $P(\cdot \mid f)$ is: large $\tau$ spreads the probability
# over many instances (weak gradients that treat every other image alike), small $\tau$
# concentrates it on the hardest negatives. The entropy of $P(\cdot\mid f)$ on the bank,
# relative to $\ln N$:

# %%
taus = [0.02, 0.05, 0.07, 0.1, 0.2, 0.5, 1.0]
ent = []
for t in taus:
    p = torch.softmax(f @ bank.t() / t, dim=1)
    ent.append((-(p * p.clamp_min(1e-30).log()).sum(1).mean() / math.log(N)).item())
    print(f"tau {t:4}: H(P)/ln N = {ent[-1]:.3f}")
assert ent[0] < ent[2] < ent[-1]

# %% [markdown]
# **The momentum $\mu$** makes each bank entry an exponential moving average of the image's
# features over past epochs (weight $(1-\mu)\mu^k$ for the feature from $k$ epochs ago):
# $\mu = 0$ stores only the last (noisy, single-augmentation) feature; $\mu \to 1$ averages
# over many epochs but follows the changing network slowly. The update, from scratch:

# %%
v = bank[:4].clone()
new = F.normalize(torch.randn(4, bank.shape[1], device=device), dim=1)
mom = 0.5
expected = F.normalize(mom * v + (1 - mom) * new, dim=1)
updated = sk.update_memory_bank(v.clone(), torch.arange(4, device=device), new, momentum=mom)
assert torch.allclose(updated, expected, atol=1e-6) and torch.allclose(updated.norm(dim=1), torch.ones(4, device=device))
print("momentum update == sk.update_memory_bank; entries stay unit-norm")
for mu in (0.0, 0.5, 0.9):
    print(f"mu = {mu}: weight of the feature from 0, 1, 2, 3 epochs ago:",
          [round((1 - mu) * mu ** k, 3) for k in range(4)])

# %% [markdown]
# The paper also adds a **proximal term** $\lambda \lVert f_i^{(t)} - v_i^{(t-1)} \rVert^2$
# that keeps an image's feature close to its bank entry from the previous epoch and
# stabilises training (`--params.proximal=λ`, `sk.proximal_term`).
#
# ## 4. A fixed Z on a random bank
#
# The paper starts the bank from random unit vectors and fixes $Z$ on the first batch. On
# random vectors, $v_j^\top f \approx 0$ and $Z \approx N e^{\sigma^2/2\tau^2}$; once the
# bank holds the network's own features — which start out similar to each other — the
# true $Z$ is orders of magnitude larger, every noise sample looks like data, and the
# noise term dominates: the loss climbs and the features get *worse*. Starting the bank from
# one pass of the untrained network (`params.bank_init="features"`, the lab preset) gives
# a $Z$ estimated on realistic similarities and pulls each view towards its own image from
# the first step. Three epochs of each on 3,000 images:

# %%
def short_run(bank_init, loss="nce", epochs=3, n=3000):
    cfg_s = sk.TrainConfig(method="npid")
    sk.apply_preset(cfg_s, "lab")
    cfg_s.epochs, cfg_s.knn_every = epochs, 0
    sk.set_value(cfg_s, "bank_init", bank_init)
    sk.set_value(cfg_s, "loss", loss)
    m = sk.build_method(cfg_s, n)
    hist = sk.fit(m, train.images[:n], cfg_s, device, log=None)
    return m, hist

for init in ("random", "features"):
    m_s, h_s = short_run(init)
    print(f"bank_init={init:8s}: Z = {float(m_s.z):.3g}, NCE loss per epoch {[round(h['loss'], 1) for h in h_s]}")
    if init == "random":
        rising = h_s[-1]["loss"] > h_s[0]["loss"]
    else:
        falling = h_s[-1]["loss"] < h_s[0]["loss"]
assert rising and falling

# %% [markdown]
# ## 5. Exact softmax against NCE on the lab subset
#
# With $N = 10{,}000$ the exact softmax is affordable on a CPU (one $B \times N$ product per
# step), so we can compare the two objectives directly: 3 epochs each on the lab subset,
# kNN accuracy of the backbone features afterwards.

# %%
def knn_of(method):
    return sk.knn_accuracy(sk.extract_features(method.backbone, train.images), train.labels,
                           sk.extract_features(method.backbone, test.images), test.labels)

compare = {}
for loss in ("softmax", "nce"):
    t0 = time.time()
    m_c, h_c = short_run("features", loss=loss, epochs=3, n=N)
    compare[loss] = (knn_of(m_c), time.time() - t0)
    print(f"{loss:8s}: kNN {compare[loss][0]:.1f}% after 3 epochs ({compare[loss][1]:.0f} s)")

# %% [markdown]
# ## 6. Instance discrimination on the lab subset
#
# The `lab` preset: the lab ConvNet, a 128-d embedding (linear + batch norm + L2), bank
# momentum 0.5, $\tau = 0.07$, NCE with $m = 4096$ noise samples per image (one set shared by
# the batch, so scoring them is one matrix product), the bank filled from the untrained
# network. The kNN monitor runs every 5 epochs on the backbone features and on the memory
# bank itself (the paper's monitor).

# %%
cfg = sk.TrainConfig(method="npid")
sk.apply_preset(cfg, "lab")
cfg.epochs, cfg.dataset, cfg.knn_every = NPID_EPOCHS, DATASET, 5
npid = sk.build_method(cfg, N)
torch.manual_seed(0)
random_net = sk.build_backbone("convnet", dataset=DATASET).to(device)
random_knn = sk.knn_accuracy(sk.extract_features(random_net, train.images), train.labels,
                             sk.extract_features(random_net, test.images), test.labels)
t0 = time.time()
history = sk.fit(npid, train.images, cfg, device, eval_data=(train.images, train.labels, test.images, test.labels))
npid_time = time.time() - t0

# %%
f_train, f_test = sk.extract_features(npid.backbone, train.images), sk.extract_features(npid.backbone, test.images)
npid_knn = sk.knn_accuracy(f_train, train.labels, f_test, test.labels)
npid_linear = sk.linear_probe(f_train, train.labels, f_test, test.labels)["test_acc"]
print(f"NPID, {NPID_EPOCHS} epochs in {npid_time:.0f} s: kNN {npid_knn:.1f}% ({npid_knn - random_knn:+.1f} over "
      f"the random network's {random_knn:.1f}%), linear probe {npid_linear:.1f}%; "
      f"kNN on the memory bank {history[-1]['bank_knn_acc']:.1f}%")
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
sk.plot_curves(history, ["loss"], ax=axes[0], title="NCE loss")
sk.plot_curves(history, ["knn_acc", "bank_knn_acc"], ax=axes[1], title="kNN: backbone features and memory bank (%)")
fig.tight_layout()

# %%
assert npid_knn > random_knn + 5, (npid_knn, random_knn)
assert history[-1]["loss"] < history[0]["loss"]
assert torch.allclose(npid.bank.norm(dim=1), torch.ones(N, device=npid.bank.device), atol=1e-4)

# %% [markdown]
# ### A longer budget
#
# The same preset for 100 epochs takes about 18 minutes on 2 CPU cores — run it once from
# the repository root, and this cell shows its result beside the live run (without it,
# the cell says so and the chapter goes on):
#
# ```bash
# python -m sslkit.train --method=npid --preset=lab --epochs=100 --output_dir=runs/npid-lab-100
# ```

# %%
LONG_RUN = "../runs/npid-lab-100"
loaded = sk.load_run(LONG_RUN, device=device)
if loaded is not None:
    long_method, long_cfg, long_metrics = loaded
    long = sk.evaluate_method(long_method, train.images, train.labels, test.images, test.labels)
    print(f"{long_cfg.epochs} epochs: kNN {long['knn_acc']:.1f}%, linear probe {long['linear_acc']:.1f}% "
          f"(live run, {NPID_EPOCHS} epochs: kNN {npid_knn:.1f}%)")
    sk.plot_curves(long_metrics, ["knn_acc", "bank_knn_acc"], title=f"{long_cfg.epochs}-epoch run: kNN monitor (%)")

# %% [markdown]
# ### Nearest neighbours in the bank
#
# Left column: test images; then their seven nearest training images by cosine similarity
# between the test image's embedding and the memory bank — what the kNN classifier votes with.

# %%
npid.eval()
with torch.no_grad():
    q_all = torch.cat([npid.embed(sk.to_float(test.images[i:i + 500].to(device))) for i in range(0, len(test), 500)])
nn_all = (q_all @ npid.bank.t()).topk(7, dim=1).indices.cpu()   # 7 nearest bank entries of every test image
queries = torch.tensor([3, 250, 700, 1100, 1500, 1900])
nn_idx = nn_all[queries]
grid = torch.cat([torch.cat([test.images[i:i + 1], train.images[nn_idx[r]]]) for r, i in enumerate(queries.tolist())])
sk.plot_image_grid(grid, nrow=8, row_labels=[test.classes[int(test.labels[i])] for i in queries],
                   title="test image, then its 7 nearest neighbours in the memory bank")
plt.show()
agree = (train.labels[nn_all] == test.labels.view(-1, 1)).float().mean().item()
print(f"over all {len(test)} test images, {agree:.0%} of the 7 nearest bank entries share the query's class "
      f"(chance {1 / len(test.classes):.0%})")
assert agree > 2 / len(test.classes)

# %% [markdown]
# ### Against the yardstick
#
# | representation (CIFAR-10 lab subset) | kNN | linear probe |
# |---|---|---|
# | random ConvNet (ch. 00) | 33.5 | 47.0 |
# | SeLa, lab budget (ch. 03) | 43.4 | 55.4 |
# | DeepCluster, lab budget (ch. 04) | 43.6 | 55.5 |
# | SwAV, lab budget (ch. 05) | 45.6 | 56.7 |
# | **NPID, lab budget (this chapter)** | 46.1 | 56.1 |
# | supervised ConvNet (ch. 00) | 64.6 | 67.7 |
#
# Instance discrimination needs no clusters at all, yet at the same CPU budget it learns
# features as good as the clustering methods'. Its weakness is the other side of the
# coin: two images of the same class are pushed apart as hard as two unrelated ones —
# which is why the clustering methods group instances, and why SwAV contrasts cluster
# assignments instead of instances.
#
# ## Summary
#
# * Non-parametric instance discrimination: $N$ classes, one per image, scored by
#   similarity to a memory bank of unit vectors refreshed with momentum.
# * NCE replaces the $N$-way softmax by a binary data-vs-noise problem with $m$ uniform
#   noise samples and a normaliser $Z$ estimated once by Monte Carlo (error $\propto 1/\sqrt m$).
# * A fixed $Z$ estimated on a random bank can be far off once the bank holds real
#   features; filling the bank from the untrained network avoids it.
# * The weighted kNN on the bank is the method's own monitor — and this book's yardstick.

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
# **Exercise 1 — h(i, v) and the NCE loss [4 points].** Implement the paper's loss
# `nce_loss(f, idx, noise, bank, tau, Z)`: `f` (B, d) unit features, `idx` (B,) each image's
# own index, `noise` (B, m) noise indices drawn uniformly ($P_n = 1/N$), `bank` (N, d), the
# temperature `tau` and a fixed normaliser `Z`. With $P(j \mid f) = \exp(v_j^\top f/\tau)/Z$
# and $h(j, f) = P(j\mid f) / (P(j\mid f) + m P_n)$, the loss of one image is
# $-\log h(i, f) - \sum_{j \in \text{noise}} \log(1 - h(j, f))$; return its mean over the
# batch (a 0-d tensor through which gradients reach `f`). No `sk.nce_loss`.

# %%
def nce_loss(f, idx, noise, bank, tau, Z):
    ...


# %% [markdown]
# **Exercise 2 — the Monte-Carlo normaliser [3 points].** $Z = \sum_{j=1}^N \exp(v_j^\top f/\tau)$
# costs N dot products. Estimate it from noise samples drawn uniformly: implement
# `mc_normalizer(f, noise, bank, tau)` returning one float,
# $\hat Z = N \cdot \operatorname{mean}_{b, j} \exp(v_{\text{noise}[b, j]}^\top f_b / \tau)$, the
# mean taken over the whole batch and all its noise samples (the paper computes it once,
# on the first batch, and keeps it fixed).

# %%
def mc_normalizer(f, noise, bank, tau):
    ...


# %% [markdown]
# **Exercise 3 — the noise mass [1 point].** With $N = 50{,}000$ images and $m = 4096$
# noise samples, what is $m P_n(j)$, the term added to $P(j \mid f)$ in the denominator of
# $h$? Give the number.

# %%
noise_mass = ...

# %% [markdown]
# **Exercise 4 — how long the bank remembers [1 point].** The bank update is
# $v_i \leftarrow \mu v_i + (1-\mu) f_i$ (then normalised), once per epoch. With
# $\mu = 0.5$, what weight does $v_i$ give to the feature written three epochs before the
# latest one (ignore the normalisation)? Give the number.

# %%
weight_3 = ...
