"""Resume (in process and after SIGKILL), torchrun with gloo, and python -m sslkit.eval."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import sslkit as sk
from conftest import make_image_folder_tar
from sslkit.runs import RunDir

CLASSES = [f"class{i}" for i in range(10)]


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)


def _cfg(method):
    cfg = sk.TrainConfig(method=method, epochs=3, batch_size=16, lr=0.05, knn_every=0, device="cpu")
    small = {"sela": dict(num_clusters=4, num_heads=2, mlp_hidden=16, num_relabels=2),
             "deepcluster": dict(num_clusters=4, pca_dim=8, mlp_hidden=16),
             "swav": dict(proj_hidden=16, proj_dim=8, num_prototypes=8, freeze_prototypes_steps=3,
                          queue_length=32, queue_start_epoch=1),
             "npid": dict(dim=8, num_noise=16)}[method]
    cfg.params = sk.METHODS[method].Params(**small)
    if method == "swav":
        cfg.optimizer = "lars"  # its momentum buffers resume too (SwAV's full-scale presets use LARS)
    return cfg


def _state(method):
    return {k: v.clone() for k, v in method.state_dict().items() if torch.is_tensor(v)}


class Interrupt(Exception):
    pass


def interrupt_at(epoch: int, batch: int) -> sk.Callback:
    """A callback that stops a run before step ``batch`` of epoch ``epoch`` (0-based), as a kill would."""
    def stop(loop):
        if (loop.epoch, loop.batch) == (epoch, batch):
            raise Interrupt
    return sk.LambdaCallback(on_batch_start=stop)


@pytest.mark.parametrize("name", ["sela", "deepcluster", "swav", "npid"])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, name):
    images = _images()
    cfg = _cfg(name)
    full = sk.build_method(cfg, len(images))
    hist_full = sk.fit(full, images, cfg, torch.device("cpu"), log=None, run=RunDir(tmp_path / "a"))

    # a run that dies in the middle of epoch 3 (after epoch 2's checkpoint)
    cfg_b = _cfg(name)
    broken = sk.build_method(cfg_b, len(images))
    with pytest.raises(Interrupt):
        sk.fit(broken, images, cfg_b, torch.device("cpu"), log=None, run=RunDir(tmp_path / "b"),
               callbacks=[interrupt_at(epoch=2, batch=1)])
    assert RunDir(tmp_path / "b").load_checkpoint()["epoch"] == 2

    resumed = sk.build_method(_cfg(name), len(images))
    hist = sk.fit(resumed, images, _cfg(name), torch.device("cpu"), log=None, run=RunDir(tmp_path / "b"),
                  resume=True)
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise on CPU
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist_full]
    assert len(RunDir(tmp_path / "b").read_metrics()) == 3


@pytest.fixture
def tiny_cifar(tmp_path, lab_cache):
    path = tmp_path / "tiny.tar.gz"
    make_image_folder_tar(path, classes=CLASSES, per_class=8)
    env = dict(os.environ, LABDATA_CIFAR10=str(path), LABDATA_DIR=str(lab_cache), PYTHONHASHSEED="0")
    return env


ARGS = ["--method=sela", "--preset=lab", "--subset=full", "--batch_size=16", "--num_clusters=5", "--num_heads=2",
        "--mlp_hidden=0", "--device=cpu", "--knn_every=0"]


def _checkpoint_model(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


def test_cli_killed_then_rerun_resumes_to_the_same_state(tmp_path, tiny_cifar):
    env = tiny_cifar
    ref, run = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=6", f"--output_dir={ref}"], env=env,
                   check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=6", f"--output_dir={run}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert done < 6 and not (run / "results.json").exists(), "the run finished before it could be killed"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["epoch"] >= 1  # a valid checkpoint
    r = subprocess.run([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=6", f"--output_dir={run}"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "resum" in r.stdout
    a, b = _checkpoint_model(ref), _checkpoint_model(run)
    for k in a:
        if torch.is_tensor(a[k]):
            assert torch.equal(a[k], b[k]), k
    assert [m["epoch"] for m in RunDir(run).read_metrics()] == [1, 2, 3, 4, 5, 6]
    # finished: the same command again does nothing; another config into it is refused
    again = subprocess.run([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=6", f"--output_dir={run}"],
                           env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    other = subprocess.run([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=7", f"--output_dir={run}"],
                           env=env, capture_output=True, text=True)
    assert other.returncode == 2 and "epochs: 6 there, 7 now" in other.stderr


@pytest.mark.parametrize("method", ["sela", "deepcluster"])
def test_torchrun_two_processes_gloo(tmp_path, tiny_cifar, method):
    """2 CPU processes (gloo) train; the pseudo-labels of the first epoch — computed on each
    process's half of the images, with Sinkhorn / PCA / k-means reduced across processes and
    the labels gathered — equal one process's labels for all the images."""
    env = tiny_cifar
    one, two = tmp_path / "one", tmp_path / "two"
    if method == "sela":
        args = ARGS + ["--epochs=1", "--batch_size=8"]
    else:
        args = ["--method=deepcluster", "--preset=lab", "--subset=full", "--batch_size=8", "--num_clusters=5",
                "--pca_dim=8", "--mlp_hidden=16", "--device=cpu", "--knn_every=0", "--epochs=1"]
    subprocess.run([sys.executable, "-m", "sslkit.train", *args, f"--output_dir={one}"], env=env, check=True,
                   capture_output=True)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "sslkit.train", *args, f"--output_dir={two}"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "2 process(es)" in r.stdout
    metrics = RunDir(two).read_metrics()
    assert len(metrics) == 1 and metrics[0]["images_per_s"] > 0  # one writer, one record per epoch
    assert torch.equal(_checkpoint_model(one)["labels"], _checkpoint_model(two)["labels"])
    assert json.loads((two / "results.json").read_text())["knn_acc"] >= 0


def test_eval_cli_reports_knn_linear_and_heads(tmp_path, tiny_cifar, monkeypatch):
    env = tiny_cifar
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "sslkit.train", *ARGS, "--epochs=1", f"--output_dir={run}"], env=env,
                   check=True, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "sslkit.eval", f"--checkpoint={run}"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((run / "eval.json").read_text())
    assert 0 <= res["knn_acc"] <= 100 and 0 <= res["linear_acc"] <= 100
    assert len(res["heads"]) == 2 and all(0 <= h["nmi"] <= 1 for h in res["heads"])
    # the same numbers as the training run's own results.json (same code, same checkpoint)
    assert res["knn_acc"] == json.loads((run / "results.json").read_text())["knn_acc"]
    # a chapter's view of the same run: the same numbers from the checkpoint, plus its history
    import labdata

    for key in ("LABDATA_CIFAR10", "LABDATA_DIR"):
        monkeypatch.setenv(key, env[key])
    train, test = (labdata.load("cifar10", split) for split in ("train", "test"))
    seen = sk.evaluate_run(run, train, test)
    assert seen["knn_acc"] == res["knn_acc"] and seen["linear_acc"] == res["linear_acc"]
    assert seen["epochs"] == 1 and seen["config"].method == "sela"
    assert sk.evaluate_run(tmp_path / "nope", train, test) is None
    bad = subprocess.run([sys.executable, "-m", "sslkit.eval", f"--checkpoint={tmp_path / 'nope'}"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no checkpoint" in bad.stderr


def test_load_run_rebuilds_the_method_or_returns_none(tmp_path, capsys):
    images = _images()
    cfg = _cfg("swav")
    cfg.epochs = 1
    m = sk.build_method(cfg, len(images))
    sk.fit(m, images, cfg, torch.device("cpu"), log=None, run=RunDir(tmp_path / "run"))
    loaded = sk.load_run(tmp_path / "run")
    method, cfg2, metrics = loaded
    assert cfg2.params.num_prototypes == 8 and len(metrics) == 1
    a, b = _state(m), _state(method)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sk.load_run(tmp_path / "missing") is None  # a chapter falls back to training
    assert "train instead" in capsys.readouterr().out


def test_tensorboard_option(tmp_path):
    """The scalars read back by TensorBoard's own event reader equal what was logged."""
    pytest.importorskip("torch.utils.tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunDir(tmp_path / "tb", tensorboard=True)
    run.log({"epoch": 1, "loss": 2.5, "knn_acc": 40.0})
    run.log({"epoch": 2, "loss": 2.25})
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 2.5), (2, 2.25)]
    assert [(e.step, e.value) for e in events.Scalars("knn_acc")] == [(1, 40.0)]
