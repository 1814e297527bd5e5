"""Hostile inputs as users cause them: each gets its clear error before any work, and nothing a user
had is lost (run directories, images, caches, degenerate settings, the tools, downloads)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import labdata
import sslkit as sk
from conftest import free_port
from sslkit.train import main

RUN = ["--method=sela", "--preset=lab", "--subset=full", "--batch_size=16", "--num_clusters=5", "--num_heads=2",
       "--mlp_hidden=0", "--device=cpu", "--knn_every=0", "--epochs=2"]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture
def finished_run(tiny_cifar):
    out = tiny_cifar / "done"
    assert main(RUN + [f"--output_dir={out}"]) == 0
    return out


# -- run directories: only ever written by the run they belong to -------------------------------------------

def test_a_finished_run_without_its_checkpoints_is_not_overwritten(finished_run, capsys):
    shutil.rmtree(finished_run / "checkpoints")  # deleted to save space
    before = _snapshot(finished_run)
    assert main(RUN + [f"--output_dir={finished_run}"]) == 0 and "nothing to do" in capsys.readouterr().out
    assert main(RUN + ["--lr=0.2", f"--output_dir={finished_run}"]) == 2
    assert "holds another run" in capsys.readouterr().err
    (finished_run / "results.json").unlink()  # ... and its results too: the metrics still hold its record
    before.pop(Path("results.json"))
    assert main(RUN + [f"--output_dir={finished_run}"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert _snapshot(finished_run) == before


@pytest.mark.parametrize("files", [{"config.json": '{"model": "resnet50", "lr": 0.1}'},  # another tool's config
                                   {"notes.txt": "my results"}, {"config.json": "{not json"}])
def test_a_folder_that_is_not_a_run_is_refused_and_left_alone(tiny_cifar, capsys, monkeypatch, files):
    out = tiny_cifar / "mine"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    monkeypatch.delenv("LABDATA_CIFAR10")  # would fail loudly if the data were loaded first
    assert main(RUN + [f"--output_dir={out}"]) == 2
    assert "holds files no sslkit run wrote" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_output_dir_with_a_tilde_is_the_home_folder(tiny_cifar, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny_cifar / "home"))
    monkeypatch.chdir(tiny_cifar)
    assert main(RUN + ["--epochs=1", "--output_dir=~/runs/x"]) == 0
    assert (tiny_cifar / "home" / "runs" / "x" / "results.json").exists() and not (tiny_cifar / "~").exists()


def test_resuming_on_other_data_is_refused_with_both_sources_named(tmp_path):
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(32, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    cfg = sk.TrainConfig(method="npid", epochs=2, batch_size=8, knn_every=0, device="cpu", precision="fp32",
                         params=sk.METHODS["npid"].Params(dim=8, num_noise=8))
    run = sk.RunDir(tmp_path / "run")

    def stop(loop):
        if loop.epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        sk.fit(sk.build_method(cfg, 32), a, cfg, log=None, run=run, callbacks=[sk.LambdaCallback(on_batch_start=stop)],
               data_id={"fingerprint": sk.data.fingerprint(a), "num_samples": 32, "source": "folder A"})
    assert json.loads((tmp_path / "run" / "data.json").read_text())["source"] == "folder A"
    b = a.clone()
    b[0, 0, 0, 0] ^= 1  # one pixel of one image differs
    with pytest.raises(sk.runs.CheckpointError, match="folder A.*folder B"):
        sk.fit(sk.build_method(cfg, 32), b, cfg, log=None, run=run, resume=True,
               data_id={"fingerprint": sk.data.fingerprint(b), "num_samples": 32, "source": "folder B"})
    with pytest.raises(sk.runs.CheckpointError, match="trained on 32 images"):
        sk.fit(sk.build_method(cfg, 40), torch.cat([a, a[:8]]), cfg, log=None, run=run, resume=True)


# -- images: the right pixels in every mode, caches that see every change -----------------------------------

def _write_folder(root: Path, images: dict) -> None:
    for rel, img in images.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / rel)


def test_every_image_mode_decodes_to_the_right_pixels_or_is_refused_by_name(tmp_path):
    from PIL import Image

    grey16 = Image.fromarray(np.full((32, 32), 30000, np.uint16))  # a 16-bit grey PNG: once came out all white
    files = {"train/a/grey16.png": grey16, "train/a/palette.png": Image.new("RGB", (32, 32), (0, 0, 255)).convert("P"),
             "train/b/cmyk.jpg": Image.new("CMYK", (32, 32), (0, 0, 0, 0)),
             "train/b/alpha.png": Image.new("RGBA", (32, 32), (10, 20, 30, 40)),
             "train/b/float.tif": Image.fromarray(np.full((32, 32), 0.25, np.float32))}
    _write_folder(tmp_path / "ok", files)
    d = labdata.load_image_folder(tmp_path / "ok", "train")
    got = {name: d.images[i, :, 0, 0].tolist() for i, name in enumerate(["grey16", "palette", "alpha", "cmyk",
                                                                          "float"])}
    assert got == {"grey16": [117] * 3, "palette": [0, 0, 255], "alpha": [10, 20, 30], "cmyk": [255] * 3,
                   "float": [64] * 3}
    _write_folder(tmp_path / "bad", {"train/a/x.tif": Image.fromarray(np.full((32, 32), 7.5, np.float32))})
    with pytest.raises(labdata.LabDataError, match=r"train/a/x.tif: a floating-point \(mode F\) image"):
        labdata.load_image_folder(tmp_path / "bad", "train")


def test_the_cache_sees_an_edited_image_and_a_new_class_inside_a_folder(tmp_path, lab_cache, monkeypatch):
    from PIL import Image

    root = tmp_path / "tree"
    _write_folder(root, {f"{s}/{c}/0.png": Image.new("RGB", (32, 32), (i * 50, 0, 0))
                         for s in ("train", "test") for i, c in enumerate(("a", "b"))})
    monkeypatch.setenv("LABDATA_CIFAR10", str(root))
    first = labdata.load("cifar10", "train", download=False)
    assert first.images[0, 0, 0, 0] == 0 and first.classes == ["a", "b"]
    Image.new("RGB", (32, 32), (7, 0, 0)).save(root / "train" / "a" / "0.png")  # the folder's own time is unchanged
    for s in ("train", "test"):
        Image.new("RGB", (32, 32), (9, 9, 9)).save((root / s / "c").mkdir() or root / s / "c" / "0.png")
    again = labdata.load("cifar10", "train", download=False)
    assert again.images[0, 0, 0, 0] == 7 and again.classes == ["a", "b", "c"]
    assert len(list((lab_cache / "tensors").glob("cifar10-train-folder-*.pt"))) == 1  # the stale entry is gone


# -- degenerate settings, non-finite state ------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--method=sela", "--params.num_clusters=1"], "at least 2 clusters"),
    (["--method=deepcluster", "--num_clusters", "1"], "at least 2 clusters"),
    (["--method=swav", "--preset=lab", "--num_prototypes=1"], "at least 2 prototypes"),
    (["--method=swav", "--preset=lab", "--temperature=0"], "temperature must be a positive number"),
    (["--method=swav", "--preset=lab", "--epsilon=0"], "epsilon=0.0: Sinkhorn's regularisation"),
    (["--method=sela", "--lam=0"], "lambda must be a positive number"),
    (["--method=sela", "--num_heads=0"], "use at least 1 head"),
    (["--method=npid", "--temperature=-1"], "temperature must be a positive number"),
    (["--method", "sela", "--epochs", "3", "--warmup_epochs", "5"], "--warmup_epochs=5"),
])
def test_degenerate_settings_are_refused_before_the_data_is_read(tiny_cifar, capsys, monkeypatch, args, message):
    monkeypatch.delenv("LABDATA_CIFAR10")  # would fail loudly if the data were loaded first
    out = tiny_cifar / "bad"
    assert main(args + [f"--output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_settings_that_do_not_fit_the_data_are_refused_before_the_run_directory_is_made(tiny_cifar, capsys):
    out = tiny_cifar / "bad"
    assert main(["--method=deepcluster", "--subset=full", "--num_clusters=500", "--batch_size=8",
                 f"--output_dir={out}"]) == 2
    assert "more than the 60 training images" in capsys.readouterr().err and not out.exists()


def test_a_run_whose_statistics_turn_non_finite_stops_before_its_checkpoint(tmp_path):
    images = (torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    cfg = sk.TrainConfig(method="npid", epochs=2, batch_size=8, knn_every=0, device="cpu", precision="fp32",
                         params=sk.METHODS["npid"].Params(dim=8, num_noise=8))

    def blow_up(loop, record):  # what a diverged run's batch norm holds
        loop.method.backbone.body[1].running_var.fill_(float("inf"))
    run = sk.RunDir(tmp_path / "run")
    with pytest.raises(FloatingPointError, match=r"backbone.body.1.running_var holds 32 non-finite .* after epoch 1"):
        sk.fit(sk.build_method(cfg, 32), images, cfg, log=None, run=run,
               callbacks=[sk.LambdaCallback(on_epoch_end=blow_up)])
    assert not run.has_checkpoint() and run.read_metrics() == []


def test_a_diverging_command_line_run_ends_with_what_to_change(tiny_cifar, capsys):
    out = tiny_cifar / "diverged"
    assert main(RUN + ["--lr=1e30", "--precision=fp32", f"--output_dir={out}"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("lower the learning rate" in err or "Lower the learning rate" in err)
    assert main(RUN + ["--lr=0.05", "--precision=fp32", f"--output_dir={out}"]) == 0  # the corrected rerun


# -- the tools: never act on the wrong target ---------------------------------------------------------------

def test_sweep_rerun_and_readme_refuse_what_they_cannot_read(tmp_path, capsys):
    from sslkit import sweep as sw

    results = tmp_path / "runs.jsonl"
    results.write_text(json.dumps({"method": "random", "dataset": "cifar10", "budget": "lab", "seed": 0}) + "\n")
    for line in ("0", "2", "-1"):
        assert sw.main(["rerun", line, "--results", str(results), "--root", str(tmp_path / "r")]) == 2
        assert "has lines 1 to 1" in capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{sw.README_BEGIN}\nthe table\n{sw.README_END}\n")
    assert sw.main(["readme", "--results", str(tmp_path / "runs.jsonl.typo"), "--readme", str(readme)]) == 2
    assert "no such file" in capsys.readouterr().err and "the table" in readme.read_text()
    assert not (tmp_path / "r").exists()


def test_eval_checks_its_options_before_evaluating(finished_run, capsys, tmp_path):
    from sslkit.eval.__main__ import main as eval_main

    assert eval_main(["--checkpoint", str(finished_run), "--output", str(tmp_path)]) == 2
    assert "is a directory; name a file" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert eval_main(["--checkpoint", str(finished_run), "--device", "cuda"]) == 2
        assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert eval_main(["--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert not (finished_run / "eval.json").exists()
    assert eval_main(["--checkpoint", str(finished_run), "--linear", "false"]) == 0  # the space-separated form
    assert "kNN" in capsys.readouterr().out and (finished_run / "eval.json").exists()


@pytest.mark.parametrize("content,message", [('{"knn_acc": 40.0}', "not an sslkit run's config"),
                                             ("[1, 2]", "not an sslkit run's config"),
                                             ('{"method": "simclr"}', "unknown method 'simclr'")])
def test_a_config_that_is_not_a_runs_config_is_refused(tmp_path, capsys, content, message):
    bad = tmp_path / "results.json"
    bad.write_text(content)
    assert main([f"--config={bad}", f"--output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- downloads: a time limit, nothing half-written ----------------------------------------------------------

def _stalling_server():
    """A loopback server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    return srv, held, f"http://127.0.0.1:{srv.getsockname()[1]}/cifar-10-python.tar.gz"


def test_a_stalled_download_ends_within_its_time_limit_and_leaves_nothing(lab_cache, monkeypatch):
    srv, held, url = _stalling_server()  # held: the accepted connection, kept open
    spec = labdata.registry.SPECS["cifar10"]
    monkeypatch.setattr(spec, "url", url)
    monkeypatch.setenv("LABDATA_TIMEOUT", "1")
    (lab_cache / "raw" / ".cifar10-killed").mkdir(parents=True)  # what a killed fetch leaves
    (lab_cache / "raw" / ".cifar10-killed" / "cifar-10-python.tar.gz").write_bytes(b"half")
    with pytest.raises(labdata.LabDataError, match="stalled: no data for 1 s"):
        labdata.load("cifar10", "train", download=True)
    assert held, "the download never connected"
    srv.close()
    assert [p for p in (lab_cache / "raw").rglob("*")] == []


def test_fetch_command_reports_a_refused_connection(lab_cache, monkeypatch, capsys):
    from labdata.__main__ import main as labdata_main

    monkeypatch.setattr(labdata.registry.SPECS["cifar10"], "url", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    assert labdata_main(["fetch", "cifar10"]) == 2
    assert "could not download" in capsys.readouterr().err
    assert [p for p in (lab_cache / "raw").rglob("*")] == []


def test_assign_build_refuses_an_output_that_is_a_file(tmp_path, capsys):
    from sslkit.assign.__main__ import main as assign_main

    afile = tmp_path / "course"
    afile.write_text("my notes")
    assert assign_main(["build", "--out", str(afile), "--chapters", "03"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and afile.read_text() == "my notes"
