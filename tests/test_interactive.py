"""The grids behind the figures you can move, against references computed here in float64:
textbook Sinkhorn scaling, SwAV's loop, brute force over balanced labellings."""

import base64
import io
import itertools
import json
import math

import numpy as np
import pytest
import torch

import labdata
import sslkit as sk


def _textbook_sinkhorn(scores, lam, iters=20000):
    """diag(a) exp(lam S) diag(b) with rows 1/N and columns 1/K, by alternating scaling (NumPy float64)."""
    kernel = np.exp(lam * (scores - scores.max(1, keepdims=True)))
    n, k = kernel.shape
    a, b = np.ones(n), np.ones(k)
    for _ in range(iters):
        b = (1 / k) / (kernel.T @ a)
        a = (1 / n) / (kernel @ b)
    return a[:, None] * kernel * b[None, :]


def _log_p(n=12, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(n, k, generator=g) * 2, 1)


def test_sinkhorn_grid_against_textbook_scaling():
    log_p = _log_p()
    n, k = log_p.shape
    s = log_p.double().numpy()
    order = sorted(range(n), key=lambda i: (int(s[i].argmax()), -float(np.exp(s[i].max()))))  # by preferred cluster
    rows = sk.sinkhorn_grid(log_p, [1.0, 3.0], max_iters=5000, tol=1e-7)
    for row, lam in zip(rows, (1.0, 3.0)):
        ref = _textbook_sinkhorn(s, lam)
        assert row["lam"] == lam and row["l"] == round(math.log10(lam), 3)
        assert np.allclose(np.array(row["q"]).reshape(n, k), n * ref[order], atol=2e-3)  # stored to 3 decimals
        assert row["h"] == pytest.approx(float(-(ref * np.log(ref)).sum()), abs=1e-4)
        assert row["sizes"] == np.bincount(ref.argmax(1), minlength=k).tolist()
        assert row["lab"] == [int(ref[i].argmax()) for i in order]
        assert row["err"] < 1e-6 and row["it"] < 5000
    assert rows[0]["h"] > rows[1]["h"]  # larger lambda, less entropy


def test_sinkhorn_grid_reports_an_unconverged_plan():
    rows = sk.sinkhorn_grid(_log_p(40, 5), [500.0], max_iters=20, tol=1e-9)
    assert rows[0]["it"] == 20 and rows[0]["err"] > 1e-3


def _swav_reference(scores, eps, iters):
    """SwAV's loop from the paper's code, in float64, then rows summing to one (which its last
    step already does; with no iteration this is the softmax)."""
    q = np.exp(scores / eps)
    q /= q.sum()
    b, k = q.shape
    for _ in range(iters):
        q /= q.sum(0, keepdims=True) * k
        q /= q.sum(1, keepdims=True) * b
    return q / q.sum(1, keepdims=True)


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_swav_codes_grid_against_the_papers_loop(iterations):
    g = torch.Generator().manual_seed(1)
    scores = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1) @ \
        torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1).T
    s = scores.double().numpy()
    soft = np.exp(s / 0.05) / np.exp(s / 0.05).sum(1, keepdims=True)
    order = np.argsort(-soft.sum(0), kind="stable")
    (row,) = sk.swav_codes_grid(scores, [-1.0], [iterations], show=5)
    ref = _swav_reference(s, 0.1, iterations)
    mass = ref.sum(0)[order]
    assert row["t"] == iterations and row["eps"] == pytest.approx(0.1)
    assert np.abs(np.array(row["q"]).reshape(5, 6) - 100 * ref[:5][:, order]).max() <= 0.51
    assert np.allclose(row["m"], mass, atol=0.006)
    assert row["top"] == pytest.approx(mass.max() / 40, abs=1e-4)
    assert row["err"] == pytest.approx(np.abs(mass / 40 - 1 / 6).sum(), abs=1e-4)
    assert row["h"] == pytest.approx((-(ref * np.log(ref)).sum(1).mean()) / math.log(6), abs=1e-4)


def _blobs(n, k, weights, seed):
    return labdata.make_blobs(n=n, k=k, weights=weights, seed=seed)


@pytest.mark.parametrize("n,k,w", [(6, 2, 2), (9, 3, 3), (8, 3, 1), (5, 2, 3)])
def test_transport_grid_against_brute_force(n, k, w):
    (row,) = sk.transport_grid(_blobs, n_values=(n,), k_values=(k,), imbalance=(w,), seed=3)
    x, y = _blobs(n, k, [float(w)] + [1.0] * (k - 1), 3)
    x, y = x.double().numpy(), y.numpy()
    centres = np.stack([x[y == j].mean(0) for j in range(k)])
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    cost = -(-d2 / 2 - np.log(np.exp(-d2 / 2).sum(1, keepdims=True)))  # minus the log-softmax
    assert row["g"] == d2.argmin(1).tolist() and row["b"] == y.tolist()
    assert row["bs"] == sorted(row["b"])
    nq = np.array(row["q"]).reshape(n, k)
    assert np.allclose(nq.sum(1), 1, atol=2e-3) and np.allclose(nq.sum(0), n / k, atol=3e-3)
    if n % k == 0:  # the optimum is a hard labelling: the cheapest one with n/k points per cluster
        best = min(cost[np.arange(n), list(lab)].sum() for lab in itertools.product(range(k), repeat=n)
                   if np.bincount(lab, minlength=k).tolist() == [n // k] * k)
        assert cost[np.arange(n), row["o"]].sum() == pytest.approx(best, abs=1e-6)
    else:  # some point is split between two clusters
        assert ((nq > 1e-3).sum(1) > 1).any()


def test_figures_carry_their_grid_sliders_and_a_png():
    from PIL import Image

    fig = sk.sinkhorn_explorer(_log_p(10, 3), lams=[1.0, 10.0, 100.0], max_iters=200)
    spec = fig.spec
    (grid,) = [v for v in spec["datasets"].values() if isinstance(v, str)]  # the grid, as one JSON string
    assert json.loads(grid) == fig.rows and len(fig.rows) == 3
    (param,) = spec["params"]
    assert param["name"] == "log10_lambda" and param["bind"]["input"] == "range"
    assert (param["bind"]["min"], param["bind"]["max"]) == (0.0, 2.0) and param["value"] == 1.0
    bundle = fig._repr_mimebundle_()
    assert bundle[sk.interactive.VEGALITE_MIME] == spec and bundle["text/plain"] == fig.description
    png = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert png.width > 300 and png.height > 300
    assert fig.spec == spec  # no random names: the stored output is the same at every execution


def test_each_explorer_has_its_sliders():
    g = torch.Generator().manual_seed(0)
    two = sk.transport_explorer(_blobs, n_values=(6, 12), k_values=(2, 3), imbalance=(1, 2))
    five = sk.swav_codes_explorer(torch.randn(12, 4, generator=g), log10_eps=[-1.5, -1.0], iterations=range(3), show=3)
    assert [p["name"] for p in two.spec["params"]] == ["n_points", "k_clusters", "imbalance"]
    assert [p["name"] for p in five.spec["params"]] == ["log10_epsilon", "iterations"]
    assert len(two.rows) == 8 and len(five.rows) == 6
    assert [p["value"] for p in two.spec["params"]] == [6, 2, 1]


def test_a_slider_needs_evenly_spaced_values():
    with pytest.raises(ValueError, match="evenly spaced"):
        sk.sinkhorn_explorer(_log_p(6, 2), lams=[1.0, 10.0, 1000.0])
