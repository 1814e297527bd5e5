import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import labdata
from labdata import LabDataError, registry
from conftest import make_image_folder_tar


def test_cifar10_official_format_loads_exactly(tiny_official):
    for split in ("train", "test"):
        d = labdata.load("cifar10", split, download=False)
        x, y = tiny_official["cifar10"][split]
        assert d.images.dtype == torch.uint8 and d.images.shape == (len(y), 3, 32, 32)
        assert d.labels.dtype == torch.int64
        assert np.array_equal(d.images.numpy(), x)
        assert np.array_equal(d.labels.numpy(), y)
        assert d.classes == registry.CIFAR10_CLASSES
    images, labels, classes = labdata.load("cifar10", "test", download=False)  # unpacks
    assert len(images) == len(labels) == 10 and len(classes) == 10


def test_cifar100_fine_and_coarse(tiny_official):
    x, fine, coarse = tiny_official["cifar100"]["train"]
    d = labdata.load("cifar100", "train", download=False)
    assert np.array_equal(d.images.numpy(), x)
    assert np.array_equal(d.labels.numpy(), fine)
    assert np.array_equal(d.extra["coarse_labels"].numpy(), coarse)
    c = labdata.load("cifar100", "train", target="coarse", download=False)
    assert np.array_equal(c.labels.numpy(), coarse)
    assert c.classes == registry.CIFAR100_COARSE_CLASSES and len(c.classes) == 20


def test_cifar100_map_is_a_partition_into_five_per_superclass():
    counts = np.bincount(registry.CIFAR100_FINE_TO_COARSE, minlength=20)
    assert (counts == 5).all()


def test_svhn_mat_format(tiny_official):
    for split in ("train", "test"):
        d = labdata.load("svhn", split, download=False)
        x, digits = tiny_official["svhn"][split]
        assert np.array_equal(d.images.numpy(), x)  # (32,32,3,N) transposed back to (N,3,32,32)
        assert np.array_equal(d.labels.numpy(), digits)  # label 10 mapped back to digit 0
        assert d.labels.min() == 0 and d.labels.max() == 9


def test_cache_is_used_and_identical(tiny_official, lab_cache):
    a = labdata.load("cifar10", "train", download=False)
    cached = list((lab_cache / "tensors").glob("cifar10-train-*.pt"))
    assert len(cached) == 1
    # remove the raw files: the second load must come from the tensor cache alone
    for f in (lab_cache / "raw" / "cifar-10-batches-py").iterdir():
        f.unlink()
    b = labdata.load("cifar10", "train", download=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_checksum_mismatch_names_the_file(tiny_official, lab_cache):
    path = lab_cache / "raw" / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(LabDataError, match="data_batch_3.*checksum|checksum.*data_batch_3"):
        labdata.load("cifar10", "train", download=False)
    assert not list((lab_cache / "tensors").glob("*.pt")) if (lab_cache / "tensors").exists() else True


def test_missing_offline_says_how_to_fetch(lab_cache):
    with pytest.raises(LabDataError, match="python -m labdata fetch cifar10"):
        labdata.load("cifar10", "train", download=False)
    assert not labdata.available("cifar10")


def test_failed_download_leaves_nothing_behind(lab_cache, monkeypatch):
    from conftest import free_port

    spec = labdata.registry.SPECS["cifar10"]  # nothing listens on this port: the connection is refused
    monkeypatch.setattr(spec, "url", f"http://127.0.0.1:{free_port()}/cifar-10-python.tar.gz")
    with pytest.raises(LabDataError, match="could not download"):
        labdata.load("cifar10", "train", download=True)
    raw = lab_cache / "raw"
    leftovers = [p for p in raw.rglob("*")] if raw.exists() else []
    assert leftovers == []


def test_unknown_name_split_target():
    with pytest.raises(LabDataError, match="unknown dataset 'places365'"):
        labdata.load("places365")
    with pytest.raises(LabDataError, match="no split 'extra'"):
        labdata.load("cifar10", "extra")
    with pytest.raises(LabDataError, match="target='coarse'"):
        labdata.load("cifar10", target="coarse")


def test_image_folder_tar_via_environment(image_folder_tar, lab_cache, monkeypatch):
    path, ref = image_folder_tar
    monkeypatch.setenv("LABDATA_CIFAR10", str(path))
    d = labdata.load("cifar10", "train", download=False)
    assert np.array_equal(d.images.numpy(), ref["train"][0])  # PNG is lossless
    assert np.array_equal(d.labels.numpy(), ref["train"][1])
    assert d.classes == ["cat", "dog", "frog"]
    t = labdata.load("cifar10", "test", download=False)  # decoded in the same pass, from the cache
    assert np.array_equal(t.images.numpy(), ref["test"][0])
    assert labdata.available("cifar10")


def test_image_folder_directory(tmp_path):
    import tarfile

    tar_path = tmp_path / "f.tar.gz"
    ref = make_image_folder_tar(tar_path, classes=("a", "b"), per_class=3)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp_path / "tree")
    d = labdata.load_image_folder(tmp_path / "tree", "train")
    assert np.array_equal(d.images.numpy(), ref["train"][0])
    assert d.classes == ["a", "b"]


def test_cifar100_image_folder_gets_coarse_labels(tmp_path, lab_cache, monkeypatch):
    fine_names = sorted(f"c{i:03d}" for i in range(100))
    path = tmp_path / "c100.tar.gz"
    make_image_folder_tar(path, classes=fine_names, per_class=1)
    monkeypatch.setenv("LABDATA_CIFAR100", str(path))
    d = labdata.load("cifar100", "train", target="coarse", download=False)
    expected = [registry.CIFAR100_FINE_TO_COARSE[i] for i in range(100)]
    assert d.labels.tolist() == expected


def test_truncated_archive_is_a_clear_error(image_folder_tar, lab_cache, monkeypatch, tmp_path):
    path, _ = image_folder_tar
    bad = tmp_path / "truncated.tar.gz"
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    monkeypatch.setenv("LABDATA_CIFAR10", str(bad))
    with pytest.raises(LabDataError, match="truncated.tar.gz.*(truncated|corrupt)"):
        labdata.load("cifar10", "train")
    tensors = lab_cache / "tensors"
    assert not tensors.exists() or not any(tensors.iterdir())


def test_environment_path_that_does_not_exist(lab_cache, monkeypatch):
    monkeypatch.setenv("LABDATA_CIFAR10", "/nonexistent/cifar.tar.gz")
    with pytest.raises(LabDataError, match="LABDATA_CIFAR10=/nonexistent/cifar.tar.gz does not exist"):
        labdata.load("cifar10")


def test_subsets_are_balanced_deterministic_and_recorded(tiny_official, lab_cache):
    a = labdata.load("cifar10", "train", subset=3, download=False)
    b = labdata.load("cifar10", "train", subset=3, download=False)
    assert torch.equal(a.indices, b.indices)
    assert torch.bincount(a.labels).tolist() == [3] * 10
    full = labdata.load("cifar10", "train", download=False)
    assert torch.equal(full.images[a.indices], a.images)
    c = labdata.load("cifar10", "train", subset=3, seed=1, download=False)
    assert not torch.equal(a.indices, c.indices)
    # a shuffled order, classes interleaved: the first images of a subset are a fair sample of it
    assert not torch.equal(a.indices, a.indices.sort().values)
    assert len(set(a.labels[:10].tolist())) >= 5  # sorted by class, the first 10 would be 4 classes
    assert list((lab_cache / "subsets").glob("cifar10-train-3-seed0.json"))
    with pytest.raises(LabDataError, match="fewer than"):
        labdata.load("cifar10", "train", subset=11, download=False)
    with pytest.raises(LabDataError, match="unknown subset"):
        labdata.load("cifar10", "train", subset="huge", download=False)


def test_lab_subset_sizes_are_as_documented():
    for name in ("cifar10", "svhn"):
        assert registry.SPECS[name].subsets["lab"]["train"] * 10 == 10_000
    assert registry.SPECS["cifar100"].subsets["lab"]["train"] * 100 == 10_000


def test_toy_generators():
    x, y = labdata.make_blobs(n=301, k=3, seed=1)
    assert x.shape == (301, 2) and x.dtype == torch.float32
    assert sorted(torch.bincount(y).tolist()) == [100, 100, 101]
    x2, _ = labdata.make_blobs(n=301, k=3, seed=1)
    assert torch.equal(x, x2)
    r, ry = labdata.make_rings(n=400, k=2, noise=0.0)
    radius = r.norm(dim=1)
    assert torch.allclose(radius, (ry + 1).float(), atol=1e-5)


def test_cli_list_and_info(lab_cache):
    env = {**os.environ, "LABDATA_DIR": str(lab_cache)}
    out = subprocess.run([sys.executable, "-m", "labdata", "list"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "cifar10" in out.stdout and "svhn" in out.stdout
    out = subprocess.run([sys.executable, "-m", "labdata", "info", "svhn"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and '"extra"' in out.stdout
    out = subprocess.run([sys.executable, "-m", "labdata", "info", "mnist"], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "unknown dataset" in out.stderr


def _folder(root, layout):
    """An image-folder tree: ``layout`` maps split -> {class: images}."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, classes in layout.items():
        for cls, n in classes.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def test_classes_are_matched_by_name_across_splits(tmp_path):
    root = _folder(tmp_path / "ok", {"train": {"ant": 2, "bee": 2, "cow": 2}, "test": {"ant": 1, "bee": 1, "cow": 1}})
    train, test = labdata.load_image_folder(root, "train"), labdata.load_image_folder(root, "test")
    assert train.classes == test.classes == ["ant", "bee", "cow"]
    assert test.labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("test_classes,named", [({"ant": 1, "cow": 1}, "'bee' has images in train/ only"),
                                                ({"ant": 1, "bee": 1, "cow": 1, "dog": 1}, "'dog' has images in test/")])
def test_a_class_missing_from_a_split_is_an_error_that_names_it(tmp_path, lab_cache, monkeypatch, test_classes, named):
    """Before, a test split without 'bee' numbered 'cow' 1 instead of 2: every later label shifted
    (raw-pixel kNN reported chance), and through LABDATA_CIFAR10 an extra class crashed later."""
    root = _folder(tmp_path / "bad", {"train": {"ant": 2, "bee": 2, "cow": 2}, "test": test_classes})
    for split in ("train", "test"):
        with pytest.raises(labdata.LabDataError, match=named):
            labdata.load_image_folder(root, split)
    monkeypatch.setenv("LABDATA_CIFAR10", str(root))
    with pytest.raises(labdata.LabDataError, match=named):
        labdata.load("cifar10", "test", download=False)


def test_subset_larger_than_a_class_names_split_and_class(tmp_path):
    root = _folder(tmp_path / "small", {"train": {"ant": 3, "bee": 2}, "test": {"ant": 1, "bee": 1}})
    with pytest.raises(labdata.LabDataError, match=r"class 'bee' \(1\) of .*small:train has only 2 images.*--subset=2"):
        labdata.load_image_folder(root, "train", subset=3)
