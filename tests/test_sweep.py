"""The sweep: a grid through sslkit.train's own code, stored lines, the table and the README's copy of it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from sslkit import sweep as sw
from sslkit.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_plan_refuses_unknown_names_before_any_run():
    with pytest.raises(ConfigError, match="unknown method 'simclr'"):
        sw.plan(["sela", "simclr"], ["cifar10"], [0], "lab")
    with pytest.raises(ConfigError, match="unknown --budget=huge"):
        sw.plan(["sela"], ["cifar10"], [0], "huge")
    cells = sw.plan(["random", "swav"], ["cifar10", "svhn"], [0, 1], "lab")
    assert len(cells) == 8 and {c.budget for c in cells} == {"lab"}
    # the lab budget trains each lab preset as it is; the long budget for 100 epochs
    assert not any(a.startswith("--epochs") for c in cells for a in c.train_args(Path("r")))
    (long,) = sw.plan(["swav"], ["cifar10"], [0], "long")
    assert "--epochs=100" in long.train_args(Path("r"))


def test_table_is_mean_and_sample_std_over_seeds():
    lines = [{"dataset": "d", "budget": "lab", "method": "sela", "epochs": 12, "seed": s, "knn_acc": k,
              "linear_acc": l, "wall_s": w, "images_per_s": 100.0, "device": "cpu", "device_name": "cpu X",
              "git_sha": "abc"} for s, k, l, w in ((0, 40.0, 50.0, 10.0), (1, 42.5, 51.0, 12.0), (2, 41.0, 55.0, 11.0))]
    (row,) = sw.results_table(lines)
    assert row["seeds"] == 3
    assert row["knn_acc"] == round(statistics.mean([40.0, 42.5, 41.0]), 4)
    assert row["knn_acc_std"] == round(statistics.stdev([40.0, 42.5, 41.0]), 4)
    assert row["linear_acc_std"] == round(statistics.stdev([50.0, 51.0, 55.0]), 4)
    assert row["nmi"] is None
    md = sw.table_markdown([row])
    assert "41.2 ± 1.3" in md and "| SeLa |" in md


def test_welch_t_of_two_table_rows_equals_scipys_unequal_variance_t():
    from scipy import stats

    from sslkit import welch_t

    def rows(*per_seed):
        lines = [{"dataset": "d", "budget": "lab", "method": m, "epochs": 12, "seed": s, "knn_acc": k,
                  "device": "cpu", "git_sha": "abc"} for m, ks in zip("ab", per_seed) for s, k in enumerate(ks)]
        return {r["method"]: r for r in sw.results_table(lines)}

    a, b = rows([40.0, 42.5, 41.0], [44.1, 45.0, 47.2, 46.0]).values()
    ref = stats.ttest_ind([40.0, 42.5, 41.0], [44.1, 45.0, 47.2, 46.0], equal_var=False).statistic
    assert welch_t(a, b) == pytest.approx(ref, rel=1e-4)       # the rows' means and stds are rounded to 4 places
    assert welch_t(b, a) == pytest.approx(-ref, rel=1e-4)
    one_seed = rows([40.0, 42.5, 41.0], [44.0])
    assert welch_t(one_seed["a"], one_seed["b"]) is None          # a single run has no spread of its own
    assert welch_t(a, b, "linear_acc") is None                   # no value
    flat = rows([40.0, 40.0], [41.0, 41.0])
    assert welch_t(flat["a"], flat["b"]) == float("-inf") and welch_t(flat["b"], flat["a"]) == float("inf")
    same = rows([40.0, 40.0], [40.0, 40.0])
    assert welch_t(same["a"], same["b"]) == 0.0


def test_welch_df_of_two_table_rows_equals_scipys_welch_satterthwaite_df():
    from scipy import stats

    from sslkit import welch_df

    def rows(*per_seed):
        lines = [{"dataset": "d", "budget": "lab", "method": m, "epochs": 12, "seed": s, "knn_acc": k,
                  "device": "cpu", "git_sha": "abc"} for m, ks in zip("ab", per_seed) for s, k in enumerate(ks)]
        return {r["method"]: r for r in sw.results_table(lines)}

    for xs, ys in (([40.0, 42.5, 41.0], [44.1, 45.0, 47.2, 46.0]), ([51.2, 51.0, 51.4], [47.0, 49.5, 46.3])):
        a, b = rows(xs, ys).values()
        ref = stats.ttest_ind(xs, ys, equal_var=False).df
        assert welch_df(a, b) == pytest.approx(ref, rel=1e-3) and welch_df(b, a) == pytest.approx(ref, rel=1e-3)
        assert min(len(xs), len(ys)) - 1 <= welch_df(a, b) <= len(xs) + len(ys) - 2   # Welch's bounds
    one_seed = rows([40.0, 42.5, 41.0], [44.0])
    assert welch_df(one_seed["a"], one_seed["b"]) is None
    flat = rows([40.0, 40.0], [41.0, 41.0])
    assert welch_df(flat["a"], flat["b"]) == float("inf")


def _summary_keys(line):
    for key in ("method", "dataset", "budget", "epochs", "seed", "knn_acc", "linear_acc", "wall_s", "device",
                "git_sha", "config"):
        assert key in line, key


def test_sweep_trains_skips_and_resumes(tmp_path, image_folder_tar, monkeypatch):
    """Two methods on a tiny image folder: lines written with their configs; a second sweep skips
    every finished run; a run whose results were lost is finished from its checkpoint, not retrained."""
    path, ref = image_folder_tar
    extra = ["--subset=full", "--epochs=1", "--batch_size=4", "--knn_k=3"]
    cells = sw.plan(["random", "supervised"], [str(path)], [0, 1], "lab", extra)
    results = tmp_path / "res" / "runs.jsonl"
    sw.sweep(cells, tmp_path / "root", results, inprocess=True)
    lines = sw.read_results(results)
    assert [(r["method"], r["seed"]) for r in lines] == [("random", 0), ("random", 1), ("supervised", 0),
                                                         ("supervised", 1)]
    for line in lines:
        _summary_keys(line)
        assert line["train_images"] == len(ref["train"][1]) and line["test_images"] == len(ref["test"][1])
    sup = [r for r in lines if r["method"] == "supervised"]
    assert all(r["epochs"] == 1 and len(r["curve"]) == 1 and r["config"]["seed"] == r["seed"] for r in sup)
    assert sup[0]["config"]["batch_size"] == 4
    table = json.loads((results.parent / "table.json").read_text())
    assert {(r["method"], r["seeds"]) for r in table} == {("random", 2), ("supervised", 2)}
    assert (results.parent / "table.csv").read_text().startswith("dataset,budget,method")
    assert "| supervised (labels: the ceiling) |" in (results.parent / "table.md").read_text()

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(sw, "run_cell", no_training)
    sw.sweep(cells, tmp_path / "root", results, inprocess=True)  # everything finished: skipped
    assert sw.read_results(results) == lines
    monkeypatch.undo()
    # a run killed after its last checkpoint but before its evaluation: resumed, not restarted
    run = cells[-1].run_dir(tmp_path / "root")
    (run / "results.json").unlink()
    before = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    sw.sweep(cells, tmp_path / "root", results, inprocess=True)
    assert (run / "results.json").exists()
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == before  # no epoch trained again
    assert [{k: v for k, v in r.items() if k != "git_sha"} for r in sw.read_results(results)] == \
        [{k: v for k, v in r.items() if k != "git_sha"} for r in lines]
    # any stored line is re-run from its own config by one command: the same numbers (CPU, same code)
    line = sw.read_results(results)[2]
    assert sw.main(["rerun", "3", "--results", str(results), "--root", str(tmp_path / "again")]) == 0
    again = json.loads((sw.Cell(line["method"], line["dataset"], "lab", line["seed"]).run_dir(tmp_path / "again")
                        / "results.json").read_text())
    assert (again["knn_acc"], again["linear_acc"]) == (line["knn_acc"], line["linear_acc"])


def test_a_variant_gets_its_own_runs_and_rows_beside_the_plain_method(tmp_path, image_folder_tar):
    with pytest.raises(ConfigError, match="lower-case letters"):
        sw.plan(["swav"], ["cifar10"], [0], "lab", ["--params.hard_codes=true"], variant="Hard codes")
    with pytest.raises(ConfigError, match="no options follow"):
        sw.plan(["swav"], ["cifar10"], [0], "lab", [], variant="hard_codes")
    path, _ = image_folder_tar
    extra = ["--subset=full", "--epochs=1", "--batch_size=4", "--knn_k=3", "--params.num_classes=3"]
    results = tmp_path / "runs.jsonl"
    plain = sw.plan(["supervised"], [str(path)], [0], "lab", extra)
    varied = sw.plan(["supervised"], [str(path)], [0], "lab", [*extra, "--weight_decay=0"], variant="no_wd")
    assert plain[0].run_dir(tmp_path) != varied[0].run_dir(tmp_path)
    sw.sweep(plain + varied, tmp_path / "root", results, inprocess=True)
    lines = sw.read_results(results)
    assert [r.get("variant", "") for r in lines] == ["", "no_wd"]
    assert lines[1]["variant_options"][-1] == "--weight_decay=0" and lines[1]["config"]["weight_decay"] == 0.0
    assert lines[0]["config"]["weight_decay"] != 0.0
    table = sw.results_table(lines)
    assert [(r["method"], r["variant"], r["seeds"]) for r in table] == [("supervised", "", 1), ("supervised", "no_wd", 1)]
    assert "| supervised (labels: the ceiling) (no_wd) |" in sw.table_markdown(table)
    sw.main(["summarise", "--all", "--results", str(results), "--root", str(tmp_path / "root")])  # rebuilt lines
    assert [(r.get("variant", ""), r["knn_acc"]) for r in sw.read_results(results)] == \
        [(r.get("variant", ""), r["knn_acc"]) for r in lines]


def test_a_run_directory_of_an_older_config_is_refused_before_any_run(tmp_path, image_folder_tar, capsys):
    """A preset or budget changed since a run finished: the sweep must not skip it (its old
    numbers would pass for the new budget's) nor resume it; it names it before any work."""
    import sslkit as sk

    path, _ = image_folder_tar
    cells = sw.plan(["npid"], [str(path)], [0], "lab", ["--subset=full", "--epochs=1", "--batch_size=8"])
    old = cells[0].run_dir(tmp_path)
    old.mkdir(parents=True)
    cfg = sk.apply_preset(sk.TrainConfig(method="npid", dataset=str(path), device="cpu"), "lab")
    cfg.epochs, cfg.subset, cfg.batch_size, cfg.seed, cfg.precision = 1, "full", 8, 0, "fp32"
    (old / "config.json").write_text(cfg.to_json())
    (old / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="hold another config") as err:
        sw.sweep(cells, tmp_path, tmp_path / "runs.jsonl")
    assert "precision: 'fp32' there, 'auto' now" in str(err.value) and not (tmp_path / "runs.jsonl").exists()


def test_rows_of_another_budget_length_or_precision_are_not_averaged_together():
    def line(seed, epochs, precision):
        return {"dataset": "cifar10", "budget": "lab", "method": "sela", "seed": seed, "epochs": epochs,
                "knn_acc": 40.0 + seed, "precision": precision, "git_sha": "abc", "device": "cpu"}
    table = sw.results_table([line(0, 12, "fp32"), line(1, 12, "fp32"), line(0, 16, "bf16")])
    assert sorted((r["epochs"], r["precision"], r["seeds"]) for r in table) == [(12, "fp32", 2), (16, "bf16", 1)]


def test_supervised_cells_get_one_output_per_class_of_a_registered_dataset():
    """No option names the head's size: the config resolves it from the data set (what the sweep's
    check of stored run directories compares against, before any data is read)."""
    import sslkit as sk
    from sslkit.cli import parse_train_args
    from sslkit.data import describe

    for dataset, classes in (("cifar10", 10), ("cifar100", 100)):
        (cell,) = sw.plan(["supervised"], [dataset], [0], "lab")
        assert not any("num_classes" in a for a in cell.train_args(Path("r")))
        cfg = parse_train_args(cell.train_args(Path("r"))).cfg
        assert cfg.params.num_classes == 0
        assert sk.validate(cfg, describe(cfg)).params.num_classes == classes


def test_svhn_runs_through_the_sweep_on_official_mat_files(tmp_path, tiny_official):
    """SVHN in the official .mat format (tiny files the fixture writes) through the sweep's own path."""
    extra = ["--subset=full", "--epochs=1", "--batch_size=5", "--knn_k=3"]
    cells = sw.plan(["random", "supervised"], ["svhn"], [0], "lab", extra)
    results = tmp_path / "runs.jsonl"
    sw.sweep(cells, tmp_path / "root", results, inprocess=True, umap_seed=None)
    lines = sw.read_results(results)
    assert [r["dataset"] for r in lines] == ["svhn", "svhn"]
    assert lines[1]["train_images"] == len(tiny_official["svhn"]["train"][1])


def test_readme_table_is_generated_from_the_stored_results():
    results = ROOT / "chapters" / "results" / "runs.jsonl"
    readme = (ROOT / "README.md").read_text()
    assert sw.README_BEGIN in readme, "README.md has no generated results block"
    block = readme.split(sw.README_BEGIN, 1)[1].split(sw.README_END, 1)[0]
    expected = sw.readme_table(results).split(sw.README_BEGIN, 1)[1].split(sw.README_END, 1)[0] \
        if results.exists() else None
    assert expected is not None, "chapters/results/runs.jsonl is missing"
    assert block == expected, "README.md's results table differs from the stored runs: python -m sslkit.sweep readme"


def test_stored_results_have_the_issue_fields_and_three_seeds_per_lab_cell():
    lines = sw.read_results(ROOT / "chapters" / "results" / "runs.jsonl")
    assert lines, "no stored runs"
    for line in lines:
        _summary_keys(line)
        assert line["git_sha"] != "unknown" and not line["git_sha"].endswith("-dirty"), "runs must come from committed code"
    assert len({line["git_sha"] for line in lines}) == 1, "the stored runs come from one commit of the code"
    table = sw.results_table(lines)
    methods = {"pixels", "random", "supervised", "sela", "deepcluster", "swav", "npid"}
    for dataset in ("cifar10", "cifar100"):   # the README, chapter 07 and book/results.md report both
        assert {r["method"] for r in table if r["dataset"] == dataset and r["budget"] == "lab"} == methods, dataset
    for row in table:
        if row["budget"] == "lab":
            assert row["seeds"] >= 3, row
    # a cell with one seed says so in the table
    md = sw.table_markdown(table)
    assert md.count("(single run)") == sum(r["seeds"] == 1 for r in table)


def test_git_sha_is_dirty_for_code_changes_but_not_for_the_stored_results(tmp_path):
    """A sweep appends to chapters/results as it goes: that must not mark the next runs' code as changed."""
    import subprocess

    from sslkit.runs import git_sha

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "chapters" / "results").mkdir(parents=True)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "chapters" / "results" / "runs.jsonl").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-qm", "init")
    clean = git_sha(tmp_path / "pkg")
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "chapters" / "results" / "runs.jsonl").write_text("{}\n{}\n")
    assert git_sha(tmp_path / "pkg") == clean
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert git_sha(tmp_path / "pkg") == clean + "-dirty"
