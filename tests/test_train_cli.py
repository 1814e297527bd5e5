import json

import pytest

from conftest import make_image_folder_tar
from sslkit.train import main



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
    (["--method=sela", "--optimizer=adam"], "--optimizer=adam: choose one of sgd, adamw, lars"),
    (["--method=sela", "--schedule=linear"], "--schedule=linear: choose one of cosine, constant, step"),
    (["--method=sela", "--precision=bf32"], "--precision=bf32: choose one of fp32, bf16, fp16, auto"),
    (["--method=npid", "--loss", "ncee"], "loss=ncee: choose one of nce, softmax"),
    (["--method=sela", "--lr=-0.1"], "--lr=-0.1: must be >= 0"),
    (["--method=sela", "--lr=nan"], "--lr=nan: must be a finite number"),
    (["--method=sela", "--weight_decay=-1e-4"], "--weight_decay=-0.0001: must be >= 0"),
    (["--method=sela", "--device=gpu"], "--device=gpu: unknown device"),
    (["--method=sela", "--knn_k=0"], "--knn_k=0: must be at least 1"),
    (["--method=sela", "--epochs=0"], "--epochs=0: must be at least 1"),
    (["--method=sela", "--schedule=step", "--lr_milestones=5,3", "--epochs=10"], "--lr_milestones=(5, 3)"),
    (["--method=sela", "--warmup_epochs=20", "--epochs=10"], "--warmup_epochs=20"),
    (["--method=sela", "--subset=-3"], "--subset=-3"),
    (["--method=sela", "--dataset=/no/such/folder"], "or the path of an image folder"),
    (["--method=swav", "--preset=lab", "--sela.lam=3"], "unknown option --sela.lam"),
])
def test_bad_input_is_refused_before_any_work(tiny_cifar, capsys, args, message):
    out = tiny_cifar / "bad"
    assert main(args + [f"--output_dir={out}"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused(tiny_cifar, capsys):
    out = tiny_cifar / "bad"
    assert main(["--method=sela", "--device=cuda", f"--output_dir={out}"]) == 2
    assert "no CUDA GPU is visible on this machine; use --device=cpu" in capsys.readouterr().err
    assert main(["--method=sela", "--device=cpu", "--precision=fp16", f"--output_dir={out}"]) == 2
    assert "--precision=fp16 needs a CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_sk_fit_refuses_what_the_command_line_refuses():
    """The same validation in sk.fit: before, schedule='cosin' trained at a constant rate and
    precision='bf32' became fp16 without a word."""
    import torch

    import sslkit as sk

    images = torch.zeros(16, 3, 32, 32, dtype=torch.uint8)
    for bad, message in [(dict(schedule="cosin"), "choose one of cosine"), (dict(precision="bf32"), "fp32, bf16"),
                         (dict(lr=float("nan")), "finite"), (dict(knn_k=0), "at least 1"),
                         (dict(device="gpu"), "unknown device"), (dict(weight_decay=-1.0), ">= 0")]:
        cfg = sk.TrainConfig(**{**dict(method="supervised", epochs=1, batch_size=8, knn_every=0, device="cpu"), **bad})
        method = sk.build_method(sk.TrainConfig(method="supervised", device="cpu"), sk.DataInfo(len(images), 1))
        with pytest.raises(sk.ConfigError, match=message):
            sk.fit(method, images, cfg, log=None, labels=torch.zeros(16, dtype=torch.long))
    cfg = sk.TrainConfig(method="sela", epochs=1, batch_size=8, device="cpu")
    cfg.params = sk.METHODS["swav"].Params()
    with pytest.raises(sk.ConfigError, match="not the SelaParams of method 'sela'"):
        cfg.validate()
    with pytest.raises(sk.ConfigError, match="names method 'supervised' but a SeLa"):
        sk.TrainConfig(method="supervised").validate(method=sk.METHODS["sela"])


def test_help_without_a_method_lists_methods_and_presets(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("supervised", "sela", "deepcluster", "swav", "npid", "--preset=cifar10", "--preset=lab"):
        assert name in out
    assert main(["--method=npid", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--loss" in out and "nce|softmax" in out and "m, noise samples per image" in out  # declared help


def test_output_dir_that_is_a_file_or_read_only_is_refused_before_loading(tiny_cifar, capsys, monkeypatch):
    import os

    monkeypatch.delenv("LABDATA_CIFAR10")  # would fail loudly if the data were loaded first
    afile = tiny_cifar / "afile"
    afile.write_text("x")
    assert main(["--method=sela", f"--output_dir={afile}"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere: the permission check cannot be seen
        ro = tiny_cifar / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        assert main(["--method=sela", f"--output_dir={ro / 'run'}"]) == 2
        assert "not writable" in capsys.readouterr().err


def test_batch_larger_than_data(tiny_cifar, capsys):
    out = tiny_cifar / "big"
    assert main(["--method=sela", "--subset=full", "--batch_size=512", f"--output_dir={out}"]) == 2
    assert "is larger than the 60 training images" in capsys.readouterr().err
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


RUN = ["--method=sela", "--preset=lab", "--subset=full", "--batch_size=16", "--num_clusters=5", "--num_heads=2",
       "--mlp_hidden=0", "--device=cpu", "--knn_every=0"]


def _epochs(out):
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_survives_kills_and_names(tiny_cifar, capsys, monkeypatch):
    import shutil

    import torch

    out = tiny_cifar / "run"
    assert main(RUN + ["--epochs=2", f"--output_dir={out}"]) == 0
    ckpt = out / "checkpoints"
    assert torch.load(ckpt / "prev.pt", weights_only=False)["epoch"] == 1  # the checkpoint before last.pt is kept
    # the same directory named by a relative path, or copied elsewhere, is the same (finished) run
    monkeypatch.chdir(tiny_cifar)
    capsys.readouterr()
    assert main(RUN + ["--epochs=2", "--output_dir=run"]) == 0 and "nothing to do" in capsys.readouterr().out
    shutil.copytree(out, tiny_cifar / "copy")
    assert main(RUN + ["--epochs=2", f"--output_dir={tiny_cifar / 'copy'}"]) == 0
    assert "nothing to do" in capsys.readouterr().out

    # a kill after the metrics line of epoch 2 but before its checkpoint, and a temporary file of a killed save
    (out / "results.json").unlink()
    (ckpt / "prev.pt").replace(ckpt / "last.pt")
    (ckpt / ".tmp-last.pt.abc123").write_bytes(b"half a checkpoint")
    assert _epochs(out) == [1, 2]
    assert main(RUN + ["--epochs=2", f"--output_dir={out}"]) == 0
    assert _epochs(out) == [1, 2]  # epoch 2 once, not twice
    assert not list(ckpt.glob(".tmp-*"))

    # a damaged last.pt: named, with the previous good checkpoint offered
    (out / "results.json").unlink()
    (ckpt / "last.pt").write_bytes((ckpt / "last.pt").read_bytes()[:1000])
    capsys.readouterr()
    assert main(RUN + ["--epochs=2", f"--output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {ckpt / 'last.pt'} is damaged" in err and "prev.pt (after epoch 1) reads" in err
    (ckpt / "prev.pt").replace(ckpt / "last.pt")  # what the message says to do
    assert main(RUN + ["--epochs=2", f"--output_dir={out}"]) == 0 and _epochs(out) == [1, 2]


def test_a_second_run_into_a_busy_directory_is_refused(tiny_cifar, capsys):
    from sslkit.runs import RunDir

    out = tiny_cifar / "busy"
    holder = RunDir(out)
    holder.lock()  # as a run in another process holds it
    assert main(RUN + ["--epochs=1", f"--output_dir={out}"]) == 2
    assert "is in use by another run" in capsys.readouterr().err
    assert not (out / "config.json").exists()


def test_a_run_that_failed_in_its_first_epoch_does_not_block_the_corrected_rerun(tiny_cifar, capsys):
    out = tiny_cifar / "first"
    # what a run that died in its first epoch leaves (lr 5.0 diverged): its marker, config and git SHA, and
    # an empty metrics.jsonl (a metrics line is only written after its epoch's checkpoint)
    out.mkdir()
    (out / ".sslkit-run").write_text("a run directory\n")
    (out / "config.json").write_text(json.dumps({"method": "sela", "lr": 5.0}))
    (out / "git_sha.txt").write_text("abc\n")
    (out / "metrics.jsonl").write_text("")
    assert main(RUN + ["--epochs=2", "--lr=0.05", f"--output_dir={out}"]) == 0
    assert "never finished its first epoch" in capsys.readouterr().out
    assert _epochs(out) == [1, 2] and json.loads((out / "config.json").read_text())["lr"] == 0.05


def test_a_supervised_head_that_does_not_fit_the_classes_is_refused_before_training(tmp_path, image_folder_tar,
                                                                                       capsys):
    """An explicit head of 10 outputs on a 3-class folder: refused with the option to pass, and no directory
    left; the lab preset's head (num_classes 0) takes the data's 3 classes."""
    import torch

    path, _ = image_folder_tar
    out = tmp_path / "run"
    base = ["--method=supervised", "--preset=lab", f"--dataset={path}", "--subset=full", "--batch_size=4",
            "--device=cpu", f"--output_dir={out}"]
    assert main(base + ["--params.num_classes=10"]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "--params.num_classes=10 but" in err and "has 3 classes" in err
    assert main(base + ["--epochs=1"]) == 0 and (out / "results.json").exists()
    assert json.loads((out / "config.json").read_text())["params"]["num_classes"] == 3
    model = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert model["head.weight"].shape[0] == 3
