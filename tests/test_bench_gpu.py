"""The GPU check command runs, with every section, on a CPU with --quick (the same code)."""

import json

import pytest

from conftest import make_image_folder_tar

CLASSES = [f"class{i}" for i in range(10)]


def test_gpu_checks_run_quick_on_cpu(tmp_path, lab_cache, monkeypatch, capsys):
    from sslkit.bench.gpu import main

    tar = tmp_path / "tiny.tar.gz"
    make_image_folder_tar(tar, classes=CLASSES, per_class=8)
    monkeypatch.setenv("LABDATA_CIFAR10", str(tar))
    out = tmp_path / "gpu.json"
    assert main(["--quick", "--device=cpu", "--quick-subset=4", f"--json={out}"]) == 0
    report = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "sslkit GPU checks on" in printed and "no CUDA device" in printed
    s, k = report["sinkhorn"], report["kmeans"]
    assert (s["N"], s["K"]) == (20_000, 300) and s["marginal_error"] <= s["tol"] and 0 < s["fraction_of_bandwidth"]
    assert (k["N"], k["D"], k["K"]) == (20_000, 64, 100) and k["iterations"] == 20 and k["inertia"] > 0
    from sslkit.registry import method_names

    methods = method_names()  # every registered method (a test's own too, when one is imported)
    assert [r["method"] for r in report["training"]] == methods
    for r in report["training"]:
        assert r["images_per_s"] > 0 and r["GFLOP_per_image"] > 0 and 0 < r["MFU"] < 1.5
    assert [r["method"] for r in report["presets"]] == methods
    for r in report["presets"]:
        assert "error" not in r, r
        assert 0 <= r["knn_acc"] <= 100 and r["epochs"] == 1
