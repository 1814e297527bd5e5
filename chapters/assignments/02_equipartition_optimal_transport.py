# %% [raw]
# # ASSIGNMENT CONFIG
# # Teacher source (otter-grader's format) of chapter 02's exercises. `python -m sslkit.assign
# # build` makes the student edition (solutions and hidden tests removed), the solutions and
# # the grader; the chapter's exercise section is the student edition's questions (a test checks).
# name: 02_equipartition_optimal_transport
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

import numpy as np
import torch

import sslkit as sk

torch.set_default_dtype(torch.float32)

# %% [raw]
# # BEGIN QUESTION
# name: constraint_matrix
# points: 4

# %% [markdown]
# **Exercise 1 — the LP's constraint matrix [4 points].** Flatten a plan $Q$ (N, K) row by
# row into $x = \operatorname{vec}(Q)$ (`Q.reshape(-1)`: entry $(i, y)$ at position $iK + y$).
# Implement `transport_constraints(n, k)` returning the dense (N + K, N K) float64 matrix
# $A$ with $A x = (\text{row sums of } Q,\ \text{column sums of } Q)$: the equality
# constraints of the transport polytope $U(r, c)$, first the $N$ image constraints, then
# the $K$ cluster constraints. (Kronecker products help: `torch.kron`.)

# %% [raw]
# # BEGIN SOLUTION

# %%
def transport_constraints(n, k):
    # BEGIN SOLUTION
    rows = torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, k, dtype=torch.float64))
    cols = torch.kron(torch.ones(1, n, dtype=torch.float64), torch.eye(k, dtype=torch.float64))
    return torch.cat([rows, cols])
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_A = transport_constraints(3, 2)
assert torch.is_tensor(_A) and tuple(_A.shape) == (5, 6), "A is (N + K, N K)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# the defining property on random plans, several shapes (N < K, N > K, N = 1, K = 1)
_g = torch.Generator().manual_seed(0)
for _n, _k in ((4, 3), (2, 7), (1, 5), (6, 1)):
    _Q = torch.rand(_n, _k, generator=_g, dtype=torch.float64)
    _A = transport_constraints(_n, _k).double()
    assert tuple(_A.shape) == (_n + _k, _n * _k), f"wrong shape for N={_n}, K={_k}"
    assert torch.allclose(_A @ _Q.reshape(-1), torch.cat([_Q.sum(1), _Q.sum(0)])), f"A vec(Q) is not (row sums, column sums) for N={_n}, K={_k}"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# entries are 0/1, each column has exactly two ones (one row constraint, one column constraint)
_A = transport_constraints(5, 4).double()
assert set(torch.unique(_A).tolist()) <= {0.0, 1.0}, "entries must be 0 or 1"
assert torch.equal(_A.sum(0), torch.full((20,), 2.0, dtype=torch.float64)), "every variable appears in one row and one column constraint"
assert int(torch.linalg.matrix_rank(_A)) == 5 + 4 - 1, "rank N + K - 1 (one constraint is redundant)"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# solving the LP with it gives sk.exact_transport's optimum (another implementation)
from scipy.optimize import linprog as _linprog
_g = torch.Generator().manual_seed(1)
_cost = torch.rand(6, 3, generator=_g, dtype=torch.float64)
_A = transport_constraints(6, 3).double().numpy()
_res = _linprog(_cost.numpy().ravel(), A_eq=_A, b_eq=np.concatenate([np.full(6, 1 / 6), np.full(3, 1 / 3)]), bounds=(0, None), method="highs")
assert _res.status == 0 and abs(_res.fun - sk.exact_transport(_cost)[1]) < 1e-9, "the LP with this A does not reach the transport optimum"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: mutual_information
# points: 4

# %% [markdown]
# **Exercise 2 — I(y; i) of a labelling [4 points].** Draw an image $i$ uniformly
# ($p(i) = 1/N$) and its label $y$ from row $i$ of `q` (N, K), a soft labelling whose rows
# are distributions (one-hot rows: a hard labelling). Implement
# `mutual_information(q)` $= I(y; i) = H(y) - H(y \mid i)$ in nats, with
# $p(y) = \frac1N \sum_i q_{iy}$, $H(y \mid i) = \frac1N \sum_i H(q_i)$ and $0 \ln 0 = 0$.
# Return a float.

# %% [raw]
# # BEGIN SOLUTION

# %%
def mutual_information(q):
    # BEGIN SOLUTION
    q = q.double()
    py = q.mean(0)
    h_y = -torch.special.xlogy(py, py).sum()
    h_y_given_i = -torch.special.xlogy(q, q).sum(1).mean()
    return float(h_y - h_y_given_i)
    # END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert abs(float(mutual_information(torch.full((4, 2), 0.5))) - 0.0) < 1e-9, "uniform rows carry no information: 0"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# brute force from the joint p(i, y) = q_iy / N: sum p log p / (p(i) p(y)), random soft labellings
def _brute(q):
    N, K = q.shape
    py = [sum(float(q[i, y]) for i in range(N)) / N for y in range(K)]
    return sum(float(q[i, y]) / N * math.log(float(q[i, y]) / py[y]) for i in range(N) for y in range(K) if q[i, y] > 0)
_g = torch.Generator().manual_seed(2)
for _n, _k in ((10, 3), (4, 8), (50, 5)):
    _q = torch.softmax(torch.randn(_n, _k, generator=_g, dtype=torch.float64) * 2, 1)
    assert abs(float(mutual_information(_q)) - _brute(_q)) < 1e-9, f"wrong I(y; i) for a soft labelling ({_n} x {_k})"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# hard labellings (zeros in q): equipartition gives ln K, a collapsed one gives 0, an unbalanced one H(sizes)
_eye = torch.eye(5, dtype=torch.float64)
_v = float(mutual_information(_eye[torch.arange(100) % 5]))
assert math.isfinite(_v) and abs(_v - math.log(5)) < 1e-9, "equipartitioned hard labels: I = ln K (0 ln 0 = 0)"
assert abs(float(mutual_information(_eye[torch.zeros(100, dtype=torch.long)]))) < 1e-9, "a collapsed labelling: I = 0"
_lab = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
assert abs(float(mutual_information(_eye[_lab])) - sk.cluster_report(_lab, 5)["entropy"]) < 1e-9, "hard labels: I = H(cluster sizes)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: lp_size
# points: 1

# %% [markdown]
# **Exercise 3 — the size of SeLa's LP [1 point].** For ImageNet ($N = 1{,}281{,}167$,
# $K = 3000$), how many equality constraints does the transport LP have, and how many of
# them are linearly independent? Set `constraints` and `independent`.

# %% [raw]
# # BEGIN SOLUTION

# %%
constraints = 1_281_167 + 3000  # SOLUTION
independent = 1_281_167 + 3000 - 1  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert isinstance(constraints, int) and isinstance(independent, int), "give two integers"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
# counted (and the rank measured) on small instances, then N + K and N + K - 1 at ImageNet size
_ok = all(int(torch.linalg.matrix_rank(torch.cat([torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, k, dtype=torch.float64)),
                                                  torch.kron(torch.ones(1, n, dtype=torch.float64), torch.eye(k, dtype=torch.float64))]))) == n + k - 1
          for n, k in ((3, 2), (5, 4), (7, 3)))
assert _ok and constraints == 1_281_167 + 3000 and independent == constraints - 1, "count the image and the cluster constraints; one is redundant"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: why_exact
# points: 1

# %% [markdown]
# **Exercise 4 — why the relaxation is exact [1 point].** SeLa relaxes hard labels to a
# plan $Q \in U(r, c)$ and still gets hard labels when $N/K$ is an integer. Why? Set `why`
# to one letter.
#
# * `"a"`: the cost $-\log P$ is convex.
# * `"b"`: the transport polytope's vertices are (scaled) 0/1 matrices when $N/K$ is an integer, and a linear objective has an optimal vertex.
# * `"c"`: Sinkhorn rounds the plan at the end.
# * `"d"`: the entropy term forces hard labels.

# %% [raw]
# # BEGIN SOLUTION

# %%
why = "b"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
assert why in ("a", "b", "c", "d"), "answer with one letter: 'a', 'b', 'c' or 'd'"

# %%
""" # BEGIN TEST CONFIG
hidden: true
""" # END TEST CONFIG
assert why == "b", "not the reason"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
