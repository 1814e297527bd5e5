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
# # Chapter 02 — Equipartition is optimal transport
#
# Chapter 01 ended with a fix: force the labels to split the data into equal parts. This
# chapter shows that the label step then becomes a classical problem, **optimal
# transport**, following SeLa (Asano, Rupprecht and Vedaldi, *Self-labelling via
# simultaneous clustering and representation learning*, ICLR 2020).
#
# **Learning goals.** After this chapter you can
# 1. derive $E(p, q) + \log N = \langle Q, -\log P \rangle$ and state the transport
#    polytope $U(r, c)$;
# 2. solve small instances exactly as a linear programme and compare them with the greedy
#    argmax, which breaks the constraint;
# 3. decompose the objective as $\langle Q, -\log P\rangle = \mathrm{KL}(Q \| P) + H(Q)$ and read it
#    as fitting the network while maximising the mutual information between labels and data
#    indices, checking each identity numerically from the definitions;
# 4. explain why relaxing 0/1 labels to the polytope loses nothing when $K$ divides $N$:
#    a linear programme over a non-empty bounded polytope (as this one is) has an optimal vertex,
#    and divisibility makes the vertices integral.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
N, K = 12, 3      # a small instance to look at (the LP has N*K variables)

# %% [markdown]
# ## 1. From cross-entropy to a transport problem
#
# Let $p(y \mid x_i)$ be the network's probabilities and let the labels be a (possibly
# soft) distribution $q(y \mid x_i)$ per image. The cross-entropy is
# $$
# E(p, q) = -\frac1N \sum_{i=1}^N \sum_{y=1}^K q(y \mid x_i) \log p(y \mid x_i).
# $$
# Equipartition asks that each label be used by the same share of the data:
# $\frac1N \sum_i q(y \mid x_i) = \frac1K$ for every $y$. SeLa writes labels and
# predictions as **joint distributions** over (image, label), i.e. $N \times K$ matrices
# $$
# Q_{iy} = \tfrac1N\, q(y \mid x_i), \qquad P_{iy} = \tfrac1N\, p(y \mid x_i).
# $$
# Then, since $\sum_{iy} Q_{iy} = 1$,
# $$
# \langle Q, -\log P \rangle = -\sum_{i,y} Q_{iy} \big(\log p(y \mid x_i) - \log N\big)
# = E(p, q) + \log N .
# $$
# The constant $\log N$ does not change the minimiser. The constraints on $Q$ are that
# its rows sum to $r = \frac1N \mathbf 1_N$ (each image carries mass $1/N$) and its columns
# to $c = \frac1K \mathbf 1_K$ (equipartition): $Q$ lies in the **transport polytope**
# $$
# U(r, c) = \{\, Q \in \mathbb R_{+}^{N \times K} : Q \mathbf 1_K = r,\; Q^\top \mathbf 1_N = c \,\}.
# $$
# So the label step is $\min_{Q \in U(r,c)} \langle Q, C \rangle$ with cost
# $C_{iy} = -\log p(y \mid x_i)$ (that is $-\log P$ up to the constant):
# transporting the mass of the images to the clusters as cheaply as possible, where
# sending image $i$ to cluster $y$ costs $-\log p(y \mid x_i)$.
#
# Let us check the identity numerically for a random network output and a fixed
# equipartitioned labelling (image $i$ in cluster $i \bmod K$).

# %%
g = torch.Generator().manual_seed(0)
logits = torch.randn(N, K, generator=g) * 2
logits[:, 0] += 2.0                        # the network prefers cluster 0
p = torch.softmax(logits.double(), 1)      # p(y | x_i)
labels = torch.arange(N) % K               # an equipartitioned hard labelling
q = F.one_hot(labels, K).double()          # q(y | x_i)

E = -(q * p.log()).sum(1).mean()           # cross-entropy
Q = q / N                                  # joint labelling
P_joint = p / N                            # SeLa's joint P
lhs, rhs = E + math.log(N), (Q * -P_joint.log()).sum()
print(f"E + log N = {lhs:.6f},  <Q, -log P> = {rhs:.6f}")
assert torch.isclose(lhs, rhs)
assert torch.allclose(Q.sum(1), torch.full((N,), 1 / N, dtype=torch.float64))
assert torch.allclose(Q.sum(0), torch.full((K,), 1 / K, dtype=torch.float64))

# %% [markdown]
# ## 2. Solving it exactly, and what greedy argmax does
#
# The problem is a linear programme with $NK$ variables and $N + K$ equality
# constraints. `sk.exact_transport(cost)` solves it with SciPy's HiGHS solver; it is the
# reference that chapter 03 measures Sinkhorn's plan against (its section 3). The greedy alternative — each image
# takes its most likely cluster — ignores the column constraint.

# %%
cost = -torch.log_softmax(logits, 1)
plan, lp_cost = sk.exact_transport(cost)
greedy = logits.argmax(1)
ot_labels = plan.argmax(1)
print("greedy argmax cluster sizes:", torch.bincount(greedy, minlength=K).tolist())
print("optimal transport sizes:    ", torch.bincount(ot_labels, minlength=K).tolist())
print(f"LP cost {lp_cost:.4f};  cost of the greedy labels {cost[torch.arange(N), greedy].mean():.4f} "
      "(lower, but infeasible)")

# %%
# NBVAL_CHECK_OUTPUT
print((plan * N).round(decimals=6))

# %%
assert torch.bincount(ot_labels, minlength=K).tolist() == [N // K] * K
assert torch.bincount(greedy, minlength=K).max() > N // K   # the greedy labelling is unbalanced

# %% [markdown]
# The exact plan is a 0/1 matrix (times $1/N$): every image goes wholly to one cluster,
# and every cluster receives exactly $N/K$ images.
#
# ### A picture: blobs of unequal size
# Points from three blobs, one of them large, and a "network" whose scores are minus the
# squared distances to three centres. Greedy assignment follows the blobs. Optimal
# transport with equal clusters must move mass out of the large blob, and it moves it where
# it costs least in total — which need not mean "the large blob's edge points go to the
# nearest other cluster". Mass can be passed along a chain: the large blob fills its
# neighbour's cluster, and the neighbour's own points move on to the next cluster. The cell
# prints where each blob's points go.

# %%
x, y = labdata.make_blobs(n=300, k=3, std=0.8, weights=[0.6, 0.2, 0.2], seed=1)
centres = torch.stack([x[y == j].mean(0) for j in range(3)])
scores = -torch.cdist(x, centres) ** 2 / 2
blob_plan, _ = sk.exact_transport(-torch.log_softmax(scores, 1))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
for ax, lab, title in [(axes[0], scores.argmax(1), "greedy argmax"), (axes[1], blob_plan.argmax(1), "equipartition (exact OT)")]:
    ax.scatter(x[:, 0], x[:, 1], c=lab, cmap="tab10", s=6, vmin=0, vmax=9)
    ax.scatter(centres[:, 0], centres[:, 1], c="k", marker="x")
    ax.set_title(f"{title}: sizes {torch.bincount(lab, minlength=3).tolist()}", fontsize=9)
    ax.set(xlabel="first coordinate", ylabel="second coordinate")
fig.tight_layout()
assert torch.bincount(blob_plan.argmax(1), minlength=3).tolist() == [100, 100, 100]
ot_lab, greedy_lab = blob_plan.argmax(1), scores.argmax(1)
for b in range(3):
    moved = torch.bincount(ot_lab[y == b], minlength=3).tolist()
    print(f"blob {b} ({int((y == b).sum())} points): greedy clusters {torch.bincount(greedy_lab[y == b], minlength=3).tolist()}"
          f", equipartition clusters {moved}")
big = int(torch.bincount(y).argmax())
assert (ot_lab[y == big] != big).any()  # the large blob has to give points away

# %% [markdown]
# **The plan itself.** The same problem as matrices, one row per point, the points grouped
# by their blob (white lines) and, within a blob, by the cluster the plan sends them to. On
# the left the network's probabilities $p(y \mid x_i) = N \cdot P$ (softmax of the scores, each row
# summing to one); on the right
# $N \cdot Q$, the exact plan scaled so that a row sums to one. A row of $N \cdot P$ is a distribution
# over the three clusters (see the left panel: sharp deep inside a blob, spread between blobs); a row of the plan
# is a single 1, and each column holds exactly $N/K = 100$ of them (both printed below).

# %%
order = torch.argsort(y * 10 + ot_lab, stable=True)
blob_NQ = len(x) * blob_plan
fig, axes = plt.subplots(1, 2, figsize=(7.5, 4), sharey=True)
for ax, mat, title in [(axes[0], torch.softmax(scores, 1), "network's $p(y \\mid x_i) = N \\cdot P$"),
                       (axes[1], blob_NQ, "exact plan $N \\cdot Q$")]:
    im = ax.imshow(mat[order], aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    for edge in torch.cumsum(torch.bincount(y), 0)[:-1].tolist():
        ax.axhline(edge - 0.5, color="white", lw=1)
    ax.set(xlabel="cluster", title=title, xticks=range(3))
    ax.grid(False)
axes[0].set_ylabel("point (grouped by blob, then by its plan's cluster)")
fig.colorbar(im, ax=axes.tolist(), label="probability / share of the point's mass")
plt.show()
single = int(((blob_NQ - 1).abs() < 1e-6).any(1).sum())
print(f"rows of N·Q holding a single 1: {single} of {len(x)}; column sums: {blob_NQ.sum(0).round().tolist()}")
assert single == len(x) and blob_NQ.sum(0).round().tolist() == [100.0, 100.0, 100.0]

# %% [markdown]
# **Move it yourself.** The figure below solves 80 such problems exactly with
# `sk.exact_transport`, one for every combination of the number of points $N$, the number of
# clusters $K$ and how many times larger blob 0 is than each other blob, and draws the one the
# sliders pick. It moves in JupyterLab and on the book's website without a running kernel;
# elsewhere the picture shows $N = 60$, $K = 3$ and blob 0 three times larger. The greedy
# labels follow the blobs; the plan gives every cluster $N/K$ points whatever the imbalance.
# When $K$ does not divide $N$ ($N = 30$ or $90$ with $K = 4$), some rows of $N \cdot Q$
# split between two or more clusters: the fractional vertex of section 4.

# %%
moving = sk.transport_explorer(labdata.make_blobs, n_values=(30, 60, 90, 120), k_values=(2, 3, 4, 5),
                               imbalance=(1, 2, 3, 4, 5))
for row in moving.rows:                    # one exact problem per slider position
    nq = torch.tensor(row["q"], dtype=torch.float64).reshape(row["n"], row["k"])
    assert torch.allclose(nq.sum(0), torch.full((row["k"],), row["n"] / row["k"], dtype=torch.float64),
                          atol=1e-3)          # N/K points in every cluster
    split_rows = int(((nq > 1e-3).sum(1) > 1).sum())
    assert (split_rows > 0) == (row["n"] % row["k"] != 0), (row["n"], row["k"], split_rows)
print(f"{len(moving.rows)} exact plans: every cluster gets N/K; rows split exactly where K does not divide N")
moving

# %% [markdown]
# ## 3. The mutual-information reading
#
# Treat $Q$ as a joint distribution of a label $y$ and a data index $i$, and $P$ as another.
# For any two joint distributions over the same pairs,
# $$
# \langle Q, -\log P \rangle = \sum_{i,y} Q_{iy} \log \frac{Q_{iy}}{P_{iy}} - \sum_{i,y} Q_{iy} \log Q_{iy}
# = \mathrm{KL}(Q \,\|\, P) + H(Q),
# $$
# and the entropy of a joint distribution splits into its marginals' entropies minus the
# mutual information,
# $$
# H(Q) = H(y, i) = H(y) + H(i) - I(y, i), \qquad
# I(y, i) = \sum_{i,y} Q_{iy} \log \frac{Q_{iy}}{Q_{i\cdot}\, Q_{\cdot y}} .
# $$
# On the transport polytope both marginals are fixed: $H(i) = \log N$ (rows $1/N$) and
# $H(y) = \log K$ (equipartition). So, over $U(r, c)$,
# $$
# \langle Q, -\log P \rangle = \mathrm{KL}(Q \,\|\, P) - I(y, i) + \log N + \log K ,
# $$
# and SeLa's label step minimises $\mathrm{KL}(Q\|P) - I(y, i)$: it brings the labels close
# to the network's predictions **and** maximises the mutual information between labels and
# indices. That is the precise sense in which the objective is "cross-entropy plus maximal
# information". The information is largest for a hard labelling: then $H(y \mid i) = 0$ and
# $I(y, i) = H(y) = \log K$, the most that $K$ labels can say about which image they came
# from. The collapsed solution of chapter 01 is the opposite extreme, $I = 0$ (its $H(y) = 0$),
# and the equipartition constraint excludes it.
#
# Below, every quantity is computed from its definition (the KL divergence, the entropies,
# and $I$ as the double sum above), and the two identities are checked, not assumed.

# %%
def entropy(pmf):
    pmf = pmf[pmf > 0]
    return float(-(pmf * pmf.log()).sum()) + 0.0  # + 0.0: no -0.0


def mutual_information_def(joint):
    """I(y; i) from its definition: the sum of Q log(Q / (Q_i. Q_.y)) over the non-zero entries."""
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    nz = joint > 0
    return float((joint[nz] * (joint[nz] / outer[nz]).log()).sum())


P_model = torch.softmax(logits.double(), 1) / N   # the network's joint P (rows 1/N)
for name, joint in [("exact OT labels", plan), ("soft plan p/N (not equipartitioned)", P_model),
                    ("collapsed (all in cluster 0)", F.one_hot(torch.zeros(N, dtype=torch.long), K).double() / N)]:
    h_yi, h_y, h_i = entropy(joint.flatten()), entropy(joint.sum(0)), entropy(joint.sum(1))
    i_yi = mutual_information_def(joint)
    assert math.isclose(h_yi, h_y + h_i - i_yi, rel_tol=1e-9, abs_tol=1e-12)   # the entropy identity
    print(f"{name:38s} H(y,i)={h_yi:.4f}  H(y)={h_y:.4f}  H(i)={h_i:.4f}  I(y,i)={i_yi:.4f}")
    if name.startswith("exact"):
        assert math.isclose(i_yi, math.log(K), rel_tol=1e-9)   # maximal information
    if name.startswith("collapsed"):
        assert math.isclose(i_yi, 0.0, abs_tol=1e-12)

# the decomposition <Q, -log P> = KL(Q || P) + H(Q) = KL - I + log N + log K, for the OT plan against the network
nz = plan > 0
kl = float((plan[nz] * (plan[nz] / P_model[nz]).log()).sum())
cross = float((plan[nz] * -P_model[nz].log()).sum())
print(f"<Q, -log P> = {cross:.6f};  KL(Q||P) + H(Q) = {kl + entropy(plan.flatten()):.6f};  "
      f"KL - I + log N + log K = {kl - mutual_information_def(plan) + math.log(N) + math.log(K):.6f}")
assert math.isclose(cross, kl + entropy(plan.flatten()), rel_tol=1e-9)
assert math.isclose(cross, kl - mutual_information_def(plan) + math.log(N) + math.log(K), rel_tol=1e-9)

# %% [markdown]
# The same mutual information, computed from hard labels by `sk.mutual_information`
# (which works on label vectors), confirms the first line: the labels of the OT plan
# against the image indices.

# %%
assert math.isclose(sk.mutual_information(ot_labels, torch.arange(N)), math.log(K), rel_tol=1e-9)
print(f"I(labels; index) = {sk.mutual_information(ot_labels, torch.arange(N)):.4f} = log K = {math.log(K):.4f}")

# %% [markdown]
# ## 4. Why the relaxation is exact
#
# The labels we want are 0/1: $q(y \mid x_i) \in \{0, 1\}$. The polytope $U(r, c)$ also
# contains fractional plans. Every linear programme over a non-empty bounded polytope has
# an optimum at a **vertex** — that much holds whatever $N$ and $K$ are. What divisibility
# decides is whether the vertices are *integral*: when $N r = \mathbf 1$ and
# $N c = \frac NK \mathbf 1$ are integer vectors ($K \mid N$), every vertex of $N \cdot U(r,c)$
# is an integer matrix, because the constraint matrix is totally unimodular. So when $K$
# divides $N$ an optimal vertex is a genuine hard labelling (a solver that returns a basic
# solution, as SciPy's HiGHS does, returns one), and nothing is lost by solving the relaxed problem.
# We check it on many random instances, and see where it breaks: when $K$ does not divide
# $N$, the column marginals $N/K$ are fractional, so no 0/1 plan is feasible and every
# feasible plan, every vertex included, splits some image between two or more clusters.

# %%
def integral(plan, n):
    return torch.allclose(plan * n, (plan * n).round(), atol=1e-7)


trials = [torch.randn(30, 5, generator=g) * 3 for _ in range(20)]
assert all(integral(sk.exact_transport(-torch.log_softmax(t, 1))[0], 30) for t in trials)
print("20 random 30x5 instances: the optimum the LP solver returns is a 0/1 plan in each")
frac_plan, _ = sk.exact_transport(-torch.log_softmax(torch.randn(31, 5, generator=g) * 3, 1))
print("31 images, 5 clusters (5 does not divide 31): integral?", integral(frac_plan, 31))
assert not integral(frac_plan, 31)

# %% [markdown]
# ## Summary
#
# * With equipartition, SeLa's label step is $\min_{Q \in U(r,c)} \langle Q, -\log P\rangle$,
#   an optimal-transport problem; `sk.exact_transport` solves small instances exactly.
# * Greedy argmax labels are cheaper but infeasible: they follow the network's
#   preferences, so a favoured cluster takes more than its share (section 2's instance).
# * On the polytope, $\langle Q, -\log P\rangle = \mathrm{KL}(Q\|P) + H(Q)$
#   $= \mathrm{KL}(Q\|P) - I(y,i) + \log N + \log K$: the label step fits the predictions and maximises the mutual information
#   between labels and data indices, $I(y,i) = \log K$ for an equipartitioned hard labelling
#   (each identity checked from the definitions).
# * Every LP over a non-empty bounded polytope has an optimal vertex; when K divides N the vertices of the transport polytope
#   are hard labellings, so the relaxation loses nothing (with 31 images and 5 clusters the
#   optimum is fractional, as printed).
# * The LP has N·K variables, a few billion for a million images and thousands of
#   clusters, and N + K equality constraints (Exercise 3 counts them): chapter 03 replaces
#   it by Sinkhorn-Knopp.

# %% [markdown]
# ## References
#
# * Y. M. Asano, C. Rupprecht, A. Vedaldi. *Self-labelling via simultaneous clustering and
#   representation learning.* ICLR 2020 — the equipartition constraint, the transport
#   polytope and the mutual-information reading. [arXiv:1911.05371](https://arxiv.org/abs/1911.05371);
#   code: [yukimasano/self-label](https://github.com/yukimasano/self-label).
# * M. Cuturi. *Sinkhorn distances: lightspeed computation of optimal transport.* NeurIPS
#   2013. [arXiv:1306.0895](https://arxiv.org/abs/1306.0895).
# * G. Peyré, M. Cuturi. *Computational optimal transport.* Foundations and Trends in Machine
#   Learning, 2019 — the LP, its vertices and the entropic relaxation.
#   [arXiv:1803.00567](https://arxiv.org/abs/1803.00567); a reference implementation:
#   [POT](https://pythonot.github.io/).

# %% [markdown]
# ## Exercises
#
# These exercises are self-contained: they need no dataset and no training run. Replace
# every `...` with your code and run the cell. In the course edition of these exercises a
# check cell under each answer runs its public tests; the grader also runs hidden tests on
# further inputs (random and edge cases). Points are in brackets.

# %%
import math

import numpy as np
import torch

import sslkit as sk

torch.set_default_dtype(torch.float32)


# %% [markdown]
# **Exercise 1 — the LP's constraint matrix [4 points].** Flatten a plan $Q$ (N, K) row by
# row into $x = \operatorname{vec}(Q)$ (`Q.reshape(-1)`: entry $(i, y)$ at position $iK + y$).
# Implement `transport_constraints(n, k)` returning the dense (N + K, N K) float64 matrix
# $A$ with $A x = (\text{row sums of } Q,\ \text{column sums of } Q)$: the equality
# constraints of the transport polytope $U(r, c)$, first the $N$ image constraints, then
# the $K$ cluster constraints. (Kronecker products help: `torch.kron`.)

# %%
def transport_constraints(n, k):
    ...


# %% [markdown]
# **Exercise 2 — I(y; i) of a labelling [4 points].** Draw an image $i$ uniformly
# ($p(i) = 1/N$) and its label $y$ from row $i$ of `q` (N, K), a soft labelling whose rows
# are distributions (one-hot rows: a hard labelling). Implement
# `mutual_information(q)` $= I(y; i) = H(y) - H(y \mid i)$ in nats, with
# $p(y) = \frac1N \sum_i q_{iy}$, $H(y \mid i) = \frac1N \sum_i H(q_i)$ and $0 \ln 0 = 0$.
# Return a float.

# %%
def mutual_information(q):
    ...


# %% [markdown]
# **Exercise 3 — the size of SeLa's LP [1 point].** For ImageNet ($N = 1{,}281{,}167$,
# $K = 3000$), how many equality constraints does the transport LP have, and how many of
# them are linearly independent? Set `constraints` and `independent`.

# %%
constraints = ...
independent = ...

# %% [markdown]
# **Exercise 4 — why the relaxation is exact [1 point].** SeLa relaxes hard labels to a
# plan $Q \in U(r, c)$ and still gets hard labels when $N/K$ is an integer. Why? Set `why`
# to one letter.
#
# * `"a"`: the cost $-\log P$ is convex.
# * `"b"`: the transport polytope's vertices are (scaled) 0/1 matrices when $N/K$ is an integer, and a linear objective has an optimal vertex.
# * `"c"`: Sinkhorn rounds the plan at the end.
# * `"d"`: the entropy term forces hard labels.

# %%
why = ...
