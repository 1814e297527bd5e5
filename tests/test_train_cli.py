import json

import pytest

from conftest import make_image_folder_tar
from sslkit.train import main

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture
def tiny_cifar(tmp_path, lab_cache, monkeypatch):
    path = tmp_path / "tiny.tar.gz"
    make_image_folder_tar(path, classes=CLASSES, per_class=6)
    monkeypatch.setenv("LABDATA_CIFAR10", str(path))
    return tmp_path


def test_sela_run_writes_a_complete_run_directory(tiny_cifar, capsys):
    out = tiny_cifar / "run"
    args = ["--method=sela", "--preset=lab", "--subset=full", "--epochs=2", "--batch_size=16",
            "--num_clusters=5", "--num_heads=2", "--mlp_hidden=0", "--device=cpu", f"--output_dir={out}"]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "sela" and cfg["params"]["num_clusters"] == 5 and cfg["epochs"] == 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and "knn_acc" in metrics[-1]
    assert (out / "checkpoints" / "last.pt").exists() and (out / "git_sha.txt").exists()
    results = json.loads((out / "results.json").read_text())
    assert 0 <= results["knn_acc"] <= 100 and results["train_images"] == 60
    # a run directory written before an option existed (here lars_eta) is still the same run
    saved = json.loads((out / "config.json").read_text())
    del saved["lars_eta"]
    (out / "config.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out
    # the same directory with another config: refused, nothing overwritten
    assert main(["--method=sela", "--subset=full", f"--output_dir={out}"]) == 2
    assert "holds another run" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--method=simclr"], "unknown method 'simclr'"),
    (["--method=sela", "--epochs=many"], "--epochs=many: expected a value of type int"),
    (["--method=sela", "--lamda=3"], "unknown option --lamda"),
    (["--method=sela", "--preset=nope"], "no preset 'nope' for method 'sela'"),
    (["--method=sela", "--dataset=mnist"], "unknown dataset 'mnist'"),
    (["--epochs=3"], "--method is required"),
    (["--method=sela", "--optimizer=adam"], "unknown optimizer 'adam'"),
    (["--method=sela", "--schedule=linear"], "unknown schedule 'linear'"),
    (["--method=sela", "--dataset=/no/such/folder"], "or the path of an image folder"),
    (["--method=swav", "--preset=lab", "--sela.lam=3"], "unknown option --sela.lam"),
])
def test_bad_input_is_refused_before_any_work(tiny_cifar, capsys, args, message):
    out = tiny_cifar / "bad"
    assert main(args + [f"--output_dir={out}"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_batch_larger_than_data(tiny_cifar, capsys):
    out = tiny_cifar / "big"
    assert main(["--method=sela", "--subset=full", "--batch_size=512", f"--output_dir={out}"]) == 2
    assert "larger than the 60 training images" in capsys.readouterr().err
    assert not out.exists()


def test_help_lists_options_and_presets(capsys):
    assert main(["--method=sela", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--lam" in text and "--batch_size" in text and "source: Asano et al." in text
    # every option has its meaning beside its default
    assert "LARS trust coefficient" in text and "lambda: the plan is diag(a) P^lambda diag(b)" in text
    # help works for any config, even one that could not run (SwAV's defaults need a queue)
    assert main(["--method=swav", "--help"]) == 0
    assert "--queue_length" in capsys.readouterr().out


def test_image_folder_dataset_and_an_invalid_subset(tmp_path, capsys):
    data = tmp_path / "pets.tar.gz"
    ref = make_image_folder_tar(data, classes=["cat", "dog", "frog", "owl"], per_class=8)
    bad = tmp_path / "bad"
    assert main(["--method=npid", f"--dataset={data}", f"--output_dir={bad}"]) == 2  # default subset 'lab'
    assert "--subset=full or --subset=N" in capsys.readouterr().err and not bad.exists()
    out = tmp_path / "run"
    assert main(["--method=npid", "--preset=lab", f"--dataset={data}", "--subset=full", "--epochs=1",
                 "--batch_size=8", "--num_noise=8", "--dim=8", "--device=cpu", f"--output_dir={out}"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["train_images"] == len(ref["train"][1]) == 32 and results["test_images"] == 16


@pytest.mark.parametrize("method,extra", [
    ("deepcluster", ["--num_clusters=5", "--pca_dim=8", "--mlp_hidden=16"]),
    ("swav", ["--num_prototypes=8", "--proj_hidden=16", "--proj_dim=8", "--freeze_prototypes_steps=2"]),
    ("npid", ["--num_noise=16", "--dim=8"]),
    ("supervised", []),
])
def test_lab_preset_of_every_method_runs_a_few_steps(tiny_cifar, method, extra):
    out = tiny_cifar / method
    rc = main([f"--method={method}", "--preset=lab", "--subset=full", "--epochs=2", "--batch_size=16",
               "--device=cpu", f"--output_dir={out}", *extra])
    assert rc == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(m["loss"] == m["loss"] for m in metrics)  # finite, logged
    results = json.loads((out / "results.json").read_text())
    assert 0 <= results["knn_acc"] <= 100 and (out / "checkpoints" / "best.pt").exists()
