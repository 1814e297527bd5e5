"""Using a trained run: sk.load_run's .features / .assign, python -m sslkit.predict, old checkpoints.

References: the backbone applied by hand to images decoded by torchvision (Resize + CenterCrop),
each head's own ``predict_clusters`` and softmax, brute-force cosine neighbours in NumPy, and
the gallery's HTML parsed for every thumbnail it references.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sslkit as sk
from sslkit.predict import main as predict_main
from sslkit.runs import CheckpointError, RunDir
from sslkit.train import main as train_main
from test_own_images import _argv, add_bad_files, reference, write_photos


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SeLa run (2 heads) on 24 images without labels, at 40 px; and 8 new images."""
    tmp = tmp_path_factory.mktemp("predict")
    root = tmp / "tiles"
    write_photos(root, 24)
    new = tmp / "new"
    write_photos(new, 8, seed=1)
    add_bad_files(new)
    run = tmp / "run"
    assert train_main(_argv(root, run, "--image_size=40", "--epochs=1")) == 0
    return root, new, run


def _by_hand(run, folder: Path, names):
    x = torch.stack([reference(folder / n, run.image_size) for n in names]).float() / 255
    m = run.method.eval()
    with torch.no_grad():
        f = m.backbone(x)
        probs = [F.softmax(h(m.mlp(f)), 1) for h in m.heads]
    return f, probs, x


def test_load_run_features_and_assign_equal_the_network_by_hand(trained):
    root, new, path = trained
    run = sk.load_run(path)
    method, cfg, metrics = run  # still unpacks as before
    assert cfg.image_size == 40 and len(metrics) == 1 and run.format == 3 and run.image_size == 40
    found = run.assign(new)
    names = [n for n in found.names]
    assert len(names) == 8 and "d1/broken.jpg" not in names  # predict's scan skips it by its header; see below
    feats, probs, x = _by_hand(run, new, names)
    assert torch.allclose(run.features(new), feats, atol=1e-5)
    assert found.clusters.shape == (8, 2) and found.confidence.shape == (8, 2)
    heads = method.predict_clusters((x * 255).round().to(torch.uint8))
    for h in range(2):
        assert torch.equal(found.clusters[:, h], heads[h].cpu())
        assert torch.allclose(found.confidence[:, h], probs[h].max(1).values, atol=1e-6)
    # the same images as a tensor of another size, as files and as PIL images: the same clusters
    from PIL import Image

    files = [new / n for n in names]
    assert torch.equal(run.assign(files).clusters, found.clusters)
    assert torch.equal(run.assign([Image.open(f) for f in files]).clusters, found.clusters)


def test_assign_is_each_methods_own_clustering(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(32, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    small = {"deepcluster": dict(num_clusters=4, pca_dim=4, mlp_hidden=8),
             "swav": dict(num_prototypes=8, proj_hidden=8, proj_dim=8)}
    for name, params in small.items():
        cfg = sk.TrainConfig(method=name, epochs=1, batch_size=8, device="cpu", knn_every=0,
                             params=sk.METHODS[name].Params(**params))
        m = sk.build_method(cfg, len(images))
        sk.fit(m, images, cfg, torch.device("cpu"), log=None, run=RunDir(tmp_path / name))
        run = sk.load_run(tmp_path / name)
        found = run.assign(images)
        assert torch.equal(found.clusters[:, 0], run.method.predict_clusters(images)[0].cpu()), name
        assert bool(((found.confidence > 0) & (found.confidence <= 1)).all())
    npid = sk.TrainConfig(method="npid", epochs=1, batch_size=8, device="cpu", knn_every=0,
                          params=sk.METHODS["npid"].Params(dim=8, num_noise=8))
    sk.fit(sk.build_method(npid, 32), images, npid, torch.device("cpu"), log=None, run=RunDir(tmp_path / "npid"))
    with pytest.raises(ValueError, match="no clusters of its own"):
        sk.load_run(tmp_path / "npid").assign(images)


def _gallery_files(page: Path) -> list[Path]:
    return [page.parent / src for src in re.findall(r"<img src='([^']+)'", page.read_text())]


def test_predict_writes_the_csv_the_features_and_a_gallery(trained, tmp_path, capsys):
    root, new, path = trained
    out = tmp_path / "pred"
    assert predict_main([f"--checkpoint={path}", f"--images={new}", f"--out={out}", "--neighbours=3",
                         "--workers=0"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 files" in printed and "notes.txt" in printed and "broken.jpg" in printed
    rows = list(csv.DictReader(open(out / "assignments.csv")))
    run = sk.load_run(path)
    found = run.assign(new)
    assert [r["image"] for r in rows] == found.names
    assert [int(r["cluster"]) for r in rows] == found.clusters[:, 0].tolist()
    assert [int(r["cluster_h1"]) for r in rows] == found.clusters[:, 1].tolist()
    assert np.allclose([float(r["confidence"]) for r in rows], found.confidence[:, 0].numpy(), atol=1e-4)
    feats = np.load(out / "features.npy")
    assert feats.shape == (8, run.method.backbone.dim) and np.allclose(feats, run.features(new).numpy(), atol=1e-6)
    # nearest training images: brute force over the training features
    train_names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    bank = run.features(root).numpy()
    q = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    best = np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :3]
    for r, want in zip(rows, best):
        assert [r[f"neighbour_{i}"] for i in (1, 2, 3)] == [train_names[j] for j in want]
    # the gallery: every thumbnail it shows exists, the clusters come largest first
    page = out / "gallery" / "index.html"
    shown = _gallery_files(page)
    assert shown and all(f.is_file() for f in shown)
    sizes = [int(s) for s in re.findall(r"cluster \d+: (\d+) image", page.read_text())]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 8
    record = json.loads((out / "predict.json").read_text())
    assert record["images"] == 8 and record["heads"] == 2 and len(record["skipped_files"]) == 2
    # a rerun into the same folder replaces it; a folder of other files is refused, and so are bad options
    assert predict_main([f"--checkpoint={path}", f"--images={new}", f"--out={out}", "--neighbours=0"]) == 0
    assert "neighbour_1" not in open(out / "assignments.csv").readline()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    capsys.readouterr()
    for argv, message in (([f"--checkpoint={path}", f"--images={new}", f"--out={tmp_path / 'mine'}"], "thesis.tex"),
                          ([f"--checkpoint={tmp_path / 'nope'}", f"--images={new}", f"--out={tmp_path / 'o1'}"],
                           "no such run directory"),
                          ([f"--checkpoint={path}", f"--images={tmp_path / 'nope'}", f"--out={tmp_path / 'o2'}"],
                           "does not exist"),
                          ([f"--checkpoint={path}", f"--images={new}", f"--out={tmp_path / 'o3'}",
                            f"--train_dataset={tmp_path / 'gone'}"], "--train_dataset=PATH"),
                          ([f"--checkpoint={path}", f"--images={new}", f"--out={tmp_path / 'o4'}", "--clusters=0"],
                           "--clusters=0")):
        assert predict_main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "pred"]  # nothing left behind


def test_predict_clusters_the_features_of_a_method_without_clusters(tmp_path):
    root = tmp_path / "tiles"
    write_photos(root, 24)
    run = tmp_path / "run"
    assert train_main(_argv(root, run, "--epochs=1", method="npid")) == 0
    out = tmp_path / "pred"
    assert predict_main([f"--checkpoint={run}", f"--images={root}", f"--out={out}", "--clusters=3",
                         "--workers=0"]) == 0
    rows = list(csv.DictReader(open(out / "assignments.csv")))
    assert len(rows) == 24 and {r["confidence"] for r in rows} == {""} and len({r["cluster"] for r in rows}) <= 3
    assert "k-means (K=3)" in (out / "gallery" / "index.html").read_text()
    assert all(f.is_file() for f in _gallery_files(out / "gallery" / "index.html"))


def test_checkpoints_of_earlier_and_later_versions(trained, tmp_path, capsys):
    _, new, path = trained
    state = torch.load(path / "checkpoints" / "last.pt", weights_only=False)
    for fmt, message in ((None, "earlier sslkit (checkpoint format 1)"), (99, "format 99")):
        old = tmp_path / f"old{fmt}"
        shutil.copytree(path, old)
        changed = dict(state)
        changed.pop("sslkit_checkpoint")
        if fmt is not None:
            changed["sslkit_checkpoint"] = fmt
        torch.save(changed, old / "checkpoints" / "last.pt")
        with pytest.raises(CheckpointError, match=re.escape(message)):
            sk.load_run(old)
        assert predict_main([f"--checkpoint={old}", f"--images={new}", f"--out={tmp_path / 'o'}"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not (tmp_path / "o").exists()
    # format 2 (before --image_size existed: every run was 32 px) still loads
    two = tmp_path / "two"
    shutil.copytree(path, two)
    changed = {k: v for k, v in state.items() if k not in ("model_info", "sampler")}
    changed["sslkit_checkpoint"] = 2
    changed["config"] = {k: v for k, v in state["config"].items() if k != "image_size"}
    torch.save(changed, two / "checkpoints" / "last.pt")
    run = sk.load_run(two)
    assert run.format == 2 and run.image_size == 32
