"""The benchmark command (python -m sslkit.bench): it runs, and it measures faiss fairly.
Speed itself is never asserted here: the benchmark prints ratios."""
import os
import sys

import pytest

from sslkit.bench import __main__ as bench  # the command; its parts are sslkit.bench.timing, .kmeans, ...
from sslkit.bench.kmeans import faiss_at_its_best

NO_REF = ("ot", "faiss", "sklearn", "sklearn.cluster", "lightly")


@pytest.fixture
def no_references(monkeypatch):
    for name in NO_REF:  # what --no-ref does, undone after the test
        monkeypatch.setitem(sys.modules, name, None)


def test_faiss_blas_is_set_only_where_its_openblas_falls_back(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    # recognised CPU: left as installed
    assert faiss_at_its_best({"avx512f", "avx2"}, probe=lambda: "SkylakeX") is None
    assert "OPENBLAS_CORETYPE" not in os.environ
    # no AVX at all: the generic kernels are the right ones
    assert faiss_at_its_best({"sse4_2"}, probe=lambda: "Prescott") is None
    assert faiss_at_its_best(set(), probe=lambda: "") is None
    # fallback on an AVX2 CPU: Haswell kernels, and the line says so
    line = faiss_at_its_best({"avx2"}, probe=lambda: "Prescott")
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and "'Prescott'" in line and "Haswell" in line
    # set already (by the user or above): never overridden
    assert faiss_at_its_best({"avx512f"}, probe=lambda: "Prescott") is None
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "SkylakeX" in faiss_at_its_best({"avx512f", "avx2"}, probe=lambda: "Core2")
    assert os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"


def _rows(out, first):
    return [line.split() for line in out.splitlines() if line.split()[:1] == [first]]


def test_kmeans_benchmark_runs_short_sizes_more_often(no_references, capsys):
    from sslkit.bench.kmeans import rounds_for

    assert rounds_for(0.01, 3, 3.0) == 41 and rounds_for(0.5, 3, 3.0) == 6  # up to min_time seconds of rounds
    assert rounds_for(1.5, 3, 3.0) == 3 and rounds_for(0.01, 50, 3.0) == 50  # never fewer than asked for
    bench.main(["kmeans", "--sizes", "2000x8x10", "--repeats", "1", "--min-time", "0.001", "--no-ref"])
    out = capsys.readouterr().out
    assert "measured fp32 matmul" in out and "faiss not installed" in out
    (row,) = _rows(out, "2000")
    n, d, k, runs = map(int, row[:4])
    assert (n, d, k, runs) == (2000, 8, 10, 1)
    assert float(row[4]) > 0 and float(row[7]) > 0  # time and inertia


def test_transport_benchmark_runs(no_references, capsys):
    bench.main(["transport", "--sizes", "500x10", "--repeats", "1", "--no-ref", "--lam", "10"])
    out = capsys.readouterr().out
    assert "measured read bandwidth" in out
    (row,) = _rows(out, "500")
    assert int(row[1]) == 10 and int(row[2]) >= 1 and float(row[3]) <= 1e-3  # iterations, error at tol


def test_train_benchmark_runs_lightlys_swav_beside_sslkits(capsys):
    """Where lightly is installed (not in requirements.txt, so CI skips this), its SwaV rows
    follow sslkit's SwAV: with the views ready, and fed by its own DataLoader."""
    pytest.importorskip("lightly")
    bench.main(["train", "--methods", "supervised", "swav", "--backbones", "convnet", "--batch-size", "32", "--steps", "2"])
    out = capsys.readouterr().out
    rows = _rows(out, "lightly")
    assert len(rows) == 2 and all(float(r[2]) > 0 and float(r[4]) > 0 for r in rows)  # images/s, GFLOP/img
    assert "views ready" in out and "its DataLoader" in out and "x as fast" in out


def test_flops_per_image_of_a_step_equal_the_closed_form():
    """A step of a two-layer MLP without biases on b inputs that need no gradient: forward
    2b(d1 d2 + d2 d3); backward: the second layer's weight and input gradients 4b d2 d3, the
    first layer's weight gradient 2b d1 d2 (its input gradient is never formed)."""
    import torch

    b, d1, d2, d3 = 16, 12, 20, 7
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d1, d2, bias=False), torch.nn.ReLU(), torch.nn.Linear(d2, d3, bias=False))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(b, d1)
    calls = []

    def step(i):
        calls.append(i)
        opt.zero_grad()
        net(x).square().sum().backward()
        opt.step()

    ips, flops = bench.images_per_s(step, steps=4, batch_size=b, device=torch.device("cpu"), warmup=2)
    assert flops == (4 * d1 * d2 + 6 * d2 * d3)  # per image
    assert ips > 0 and len(calls) == 2 + 4  # the counted step is a warm-up step, not timed


def test_train_benchmark_prints_the_flop_rate_beside_the_matmul_rate(no_references, capsys):
    bench.main(["train", "--methods", "supervised", "swav", "--backbones", "convnet", "--batch-size", "16", "--steps", "1"])
    out = capsys.readouterr().out
    assert "measured float32 matmul" in out and "flop_counter" in out
    rows = {r[0]: r for r in _rows(out, "supervised") + _rows(out, "swav")}
    assert set(rows) == {"supervised", "swav"} and not _rows(out, "lightly")
    for r in rows.values():
        ips, gflop_img, gflops, frac = float(r[2]), float(r[4]), float(r[5]), float(r[6].rstrip("%")) / 100
        assert ips > 0 and gflop_img > 0 and gflops > 0 and 0 < frac < 1.5
    # SwAV's step runs the backbone on two views (the supervised step on one), plus its heads
    assert float(rows["swav"][4]) > 2 * float(rows["supervised"][4])
