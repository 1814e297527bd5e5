"""Tiny datasets in the official on-disk formats, built fresh for each test that asks.

They are loaded through labdata's real code path: the registry's checksums are replaced by
the tiny files' own MD5s, so verification runs as it does on the real files.
"""

from __future__ import annotations

import io
import pickle
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest

import labdata
from labdata import official, registry


def _images(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def lab_cache(tmp_path, monkeypatch):
    """An empty labdata cache folder; no dataset environment variables."""
    monkeypatch.setenv("LABDATA_DIR", str(tmp_path / "cache"))
    for spec in registry.SPECS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    return tmp_path / "cache"


def _register(monkeypatch, spec, folder: Path):
    files = {s: [(name, official.md5sum(folder / name)) for name, _ in spec.files[s]] for s in spec.files
             if all((folder / n).exists() for n, _ in spec.files[s])}
    monkeypatch.setattr(spec, "files", {**spec.files, **files})
    if spec.meta_file:
        monkeypatch.setattr(spec, "meta_file", (spec.meta_file[0], official.md5sum(folder / spec.meta_file[0])))


@pytest.fixture
def tiny_official(lab_cache, monkeypatch):
    """CIFAR-10 (5 train batches + test), CIFAR-100 and SVHN in their official formats.

    Returns the arrays written, as the reference the loaders are compared with.
    """
    rng = np.random.default_rng(0)
    raw = lab_cache / "raw"
    ref = {}
    # CIFAR-10: 6 images per batch, labels cycling over the 10 classes
    c10 = raw / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        x = _images(rng, 20)
        y = [int(v) for v in rng.permutation(np.arange(20) % 10)]
        _pickle(c10 / f"data_batch_{b}", {"data": x.reshape(20, -1), "labels": y, "batch_label": f"b{b}"})
        train_x.append(x)
        train_y += y
    tx = _images(rng, 10)
    ty = list(range(10))
    _pickle(c10 / "test_batch", {"data": tx.reshape(10, -1), "labels": ty})
    _pickle(c10 / "batches.meta", {"label_names": registry.CIFAR10_CLASSES})
    ref["cifar10"] = {"train": (np.concatenate(train_x), np.array(train_y)), "test": (tx, np.array(ty))}
    _register(monkeypatch, registry.SPECS["cifar10"], c10)
    # CIFAR-100: 200 train images (2 per fine class), 100 test
    c100 = raw / "cifar-100-python"
    c100.mkdir(parents=True)
    fine_names = [f"class{i:03d}" for i in range(100)]
    for split, n in (("train", 200), ("test", 100)):
        x = _images(rng, n)
        fine = [int(v) for v in rng.permutation(np.arange(n) % 100)]
        coarse = [registry.CIFAR100_FINE_TO_COARSE[f] for f in fine]
        _pickle(c100 / split, {"data": x.reshape(n, -1), "fine_labels": fine, "coarse_labels": coarse})
        ref.setdefault("cifar100", {})[split] = (x, np.array(fine), np.array(coarse))
    _pickle(c100 / "meta", {"fine_label_names": fine_names, "coarse_label_names": registry.CIFAR100_COARSE_CLASSES})
    _register(monkeypatch, registry.SPECS["cifar100"], c100)
    # SVHN: X is (32, 32, 3, N), y is (N, 1) with digit 0 stored as 10
    from scipy.io import savemat

    svhn = raw / "svhn"
    svhn.mkdir(parents=True)
    for split, n in (("train", 30), ("test", 20)):
        x = _images(rng, n)
        digits = np.arange(n) % 10
        savemat(svhn / f"{split}_32x32.mat",
                {"X": np.transpose(x, (2, 3, 1, 0)), "y": np.where(digits == 0, 10, digits).reshape(-1, 1)})
        ref.setdefault("svhn", {})[split] = (x, digits)
    _register(monkeypatch, registry.SPECS["svhn"], svhn)
    return ref


def make_image_folder_tar(path: Path, classes=("cat", "dog", "frog"), per_class=4, fmt="PNG", seed=0):
    """A .tar.gz of train/<class>/*.png and test/<class>/*.png; returns {split: (images, labels)}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ref = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", per_class), ("test", max(1, per_class // 2))):
            xs, ys = [], []
            for ci, cls in enumerate(sorted(classes)):
                for i in range(n):
                    x = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(x).save(buf, format=fmt)
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.{fmt.lower()}")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
                    xs.append(x.transpose(2, 0, 1))
                    ys.append(ci)
            ref[split] = (np.stack(xs), np.array(ys))
    return ref


@pytest.fixture
def image_folder_tar(tmp_path):
    path = tmp_path / "folder.tar.gz"
    return path, make_image_folder_tar(path)


def free_port() -> int:
    """A free TCP port on the loopback interface, for 2-process gloo tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny_cifar(tmp_path, lab_cache, monkeypatch):
    """A 10-class image-folder tar (6 train, 3 test images per class) that LABDATA_CIFAR10 names;
    returns the test's temporary folder."""
    path = tmp_path / "tiny.tar.gz"
    make_image_folder_tar(path, classes=[f"class{i}" for i in range(10)], per_class=6)
    monkeypatch.setenv("LABDATA_CIFAR10", str(path))
    return tmp_path
