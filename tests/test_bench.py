"""The benchmark command (python -m sslkit.bench): it runs, and it measures faiss fairly.
Speed itself is never asserted here: the benchmark prints ratios."""
import os
import sys

import pytest

from sslkit.bench import __main__ as bench

NO_REF = ("ot", "faiss", "sklearn", "sklearn.cluster", "lightly")


@pytest.fixture
def no_references(monkeypatch):
    for name in NO_REF:  # what --no-ref does, undone after the test
        monkeypatch.setitem(sys.modules, name, None)


def test_faiss_blas_is_set_only_where_its_openblas_falls_back(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    # recognised CPU: left as installed
    assert bench.faiss_at_its_best({"avx512f", "avx2"}, probe=lambda: "SkylakeX") is None
    assert "OPENBLAS_CORETYPE" not in os.environ
    # no AVX at all: the generic kernels are the right ones
    assert bench.faiss_at_its_best({"sse4_2"}, probe=lambda: "Prescott") is None
    assert bench.faiss_at_its_best(set(), probe=lambda: "") is None
    # fallback on an AVX2 CPU: Haswell kernels, and the line says so
    line = bench.faiss_at_its_best({"avx2"}, probe=lambda: "Prescott")
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and "'Prescott'" in line and "Haswell" in line
    # set already (by the user or above): never overridden
    assert bench.faiss_at_its_best({"avx512f"}, probe=lambda: "Prescott") is None
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "SkylakeX" in bench.faiss_at_its_best({"avx512f", "avx2"}, probe=lambda: "Core2")
    assert os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"


def _rows(out, first):
    return [line.split() for line in out.splitlines() if line.split()[:1] == [first]]


def test_kmeans_benchmark_runs_short_sizes_more_often(no_references, capsys):
    bench.main(["kmeans", "--sizes", "2000x8x10", "--repeats", "1", "--min-time", "0.3", "--no-ref"])
    out = capsys.readouterr().out
    assert "measured fp32 matmul" in out and "faiss not installed" in out
    (row,) = _rows(out, "2000")
    n, d, k, runs = map(int, row[:4])
    assert (n, d, k) == (2000, 8, 10) and 1 < runs <= 41  # a run of milliseconds gets more rounds
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
    bench.main(["train", "--methods", "swav", "--backbones", "convnet", "--batch-size", "32", "--steps", "2"])
    out = capsys.readouterr().out
    rows = _rows(out, "lightly")
    assert len(rows) == 2 and all(float(r[2]) > 0 for r in rows)
    assert "views ready" in out and "its DataLoader" in out and "x as fast" in out
