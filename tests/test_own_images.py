"""Images without labels: folders and archives at any depth, bad files, --image_size, STL-10, streaming.

References: torchvision's ``Resize`` + ``CenterCrop`` on PIL images for every decoded image,
torchvision's own ``STL10`` reader for the official binary files, torchvision's ResNet for the
ImageNet stem, and an in-memory run for the streamed one (bitwise on the CPU).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import labdata
import sslkit as sk
from conftest import _register, make_image_folder_tar
from sslkit.runs import RunDir
from sslkit.train import main

SIZES = ((40, 30), (30, 52), (64, 64), (33, 90))  # (w, h): landscape, portrait, square, odd


def write_photos(root: Path, n: int, seed: int = 0, depth: int = 3, fmt: str = "PNG") -> list[str]:
    """``n`` random RGB images of several sizes at depths 0..depth-1 under ``root``; their relative paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        rel = Path(*[f"d{(i + k) % 3}" for k in range(i % depth)]) / f"img{i:03d}.{fmt.lower()}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        w, h = SIZES[i % len(SIZES)]
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / rel, format=fmt)
        names.append(rel.as_posix())
    return sorted(names)


def reference(path: Path, size: int) -> torch.Tensor:
    """torchvision's Resize(size) + CenterCrop(size) of the file, as uint8 (3, size, size)."""
    import torchvision.transforms as T
    from PIL import Image

    img = Image.open(path).convert("RGB")
    return torch.from_numpy(np.asarray(T.CenterCrop(size)(T.Resize(size)(img))).copy()).permute(2, 0, 1)


def add_bad_files(root: Path) -> list[str]:
    (root / "notes.txt").write_text("not an image")
    (root / "d1").mkdir(exist_ok=True)
    (root / "d1" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / ".hidden").mkdir(exist_ok=True)
    (root / ".hidden" / "x.png").write_bytes(b"ignored: hidden")
    return ["d1/broken.jpg", "notes.txt"]


def tar_of(root: Path, out: Path, mode: str) -> Path:
    with tarfile.open(out, mode) as tar:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                tar.add(f, arcname=f"top/{f.relative_to(root).as_posix()}")
    return out


def test_a_folder_without_labels_is_read_at_any_depth_as_torchvision_reads_each_image(tmp_path):
    root = tmp_path / "tiles"
    names = write_photos(root, 12)
    bad = add_bad_files(root)
    assert labdata.layout(root) == "unlabelled"
    data = labdata.load_unlabelled(root, size=24)
    assert data.labels is None and data.names == names and len(data) == 12
    assert sorted(data.extra["skipped"]) == bad  # the hidden folder is not even counted
    for name, image in zip(data.names, data.images):
        assert torch.equal(image, reference(root / name, 24)), name
    # the same tree as an uncompressed and a compressed archive: the same images under the same names
    for mode, suffix in (("w", ".tar"), ("w:gz", ".tar.gz")):
        arch = labdata.load_unlabelled(tar_of(root, tmp_path / f"tiles{suffix}", mode), size=24)
        assert arch.names == [f"top/{n}" for n in names] and torch.equal(arch.images, data.images)
        assert sorted(arch.extra["skipped"]) == [f"top/{b}" for b in bad]
    files = labdata.scan_images(tmp_path / "tiles.tar")
    assert files.random_access and not labdata.scan_images(tmp_path / "tiles.tar.gz").random_access
    i = files.names.index(f"top/{names[3]}")
    assert files.read(i) == (root / names[3]).read_bytes()  # read at its offset inside the archive
    # a labelled tree is told apart; a subset is a seeded sample
    make_image_folder_tar(tmp_path / "labelled.tar.gz")
    assert labdata.layout(tmp_path / "labelled.tar.gz") == "labelled"
    sub = labdata.load_unlabelled(root, size=24, subset=5, seed=0)
    assert len(sub) == 5 and set(sub.names) <= set(names)
    assert sub.names == labdata.load_unlabelled(root, size=24, subset=5, seed=0).names


def _argv(data, out, *extra, method="sela"):
    small = {"sela": ["--num_clusters=4", "--num_heads=2", "--mlp_hidden=16"],
             "swav": ["--num_prototypes=8", "--proj_hidden=16", "--proj_dim=8", "--freeze_prototypes_steps=1"],
             "npid": ["--dim=8", "--num_noise=16"], "deepcluster": ["--num_clusters=4", "--pca_dim=8",
                                                                  "--mlp_hidden=16"], "supervised": []}[method]
    return [f"--method={method}", "--preset=lab", f"--dataset={data}", "--subset=full", "--epochs=2",
            "--batch_size=8", "--device=cpu", "--precision=fp32", "--workers=0", "--knn_every=1", f"--output_dir={out}",
            *small, *extra]


def test_the_cli_trains_on_images_without_labels_with_label_free_monitors(tmp_path, capsys):
    root = tmp_path / "tiles"
    write_photos(root, 24)
    add_bad_files(root)
    out = tmp_path / "run"
    assert main(_argv(root, out, "--image_size=32")) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 of 26 files" in printed and "d1/broken.jpg" in printed and "notes.txt" in printed
    assert "24 images without labels" in printed
    metrics = RunDir(out).read_metrics()
    assert len(metrics) == 2 and not any("knn_acc" in r or "nmi_true" in r for r in metrics)
    assert {"nmi_prev", "cluster_entropy", "largest_cluster", "loss"} <= set(metrics[1])  # the label-free monitors
    results = json.loads((out / "results.json").read_text())
    assert "knn_acc" not in results and results["k"] == 4 and sum(results["cluster_sizes"]) == 24
    assert results["skipped_files"] == 2
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["sslkit_checkpoint"] == 3 and state["model_info"]["image_size"] == 32
    assert state["model_info"]["mean"] == pytest.approx([0.485, 0.456, 0.406])  # ImageNet's for a folder
    assert state["sampler"] == {"epochs_done": 2, "next_step": 0, "steps_per_epoch": 3, "global_batch": 8}


def _no_decoding(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("an image was decoded")
    monkeypatch.setattr(labdata.files, "decode_image", refuse)


def test_bad_input_is_refused_before_any_image_is_decoded_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    root = tmp_path / "tiles"
    write_photos(root, 12)
    add_bad_files(root)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    _no_decoding(monkeypatch)
    cases = [(_argv(root, tmp_path / "a", method="supervised"), "choose a self-supervised method"),
             (_argv(root, tmp_path / "b", "--strict_images"), "--strict_images: 1 file(s)"),
             (_argv(tmp_path / "empty", tmp_path / "c"), f"{tmp_path / 'empty'} holds no image files"),
             # before decoding, the 12 images and broken.jpg are 13 image files
             (_argv(root, tmp_path / "d", "--batch_size=64"), "larger than the 13 training images"),
             (_argv(root, tmp_path / "e", "--eval_dataset=/no/such"), "--eval_dataset=/no/such: no such"),
             (_argv(root, tmp_path / "f", "--image_size=8"), "--image_size=8: must be between 16"),
             (_argv(root, tmp_path / "g", "--subset=lab"), "--subset=lab is defined for")]
    for argv, message in cases:
        assert main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err  # one line
        out = next(Path(a.split("=", 1)[1]) for a in argv if a.startswith("--output_dir="))
        assert not out.exists(), message  # nothing left that would block a rerun
    assert main(_argv(root, tmp_path / "h", "--strict_images")) == 2 and "notes.txt" in capsys.readouterr().err


def test_eval_dataset_brings_knn_and_the_linear_probe(tmp_path, capsys):
    root = tmp_path / "tiles"
    write_photos(root, 24)
    labelled = tmp_path / "labelled.tar.gz"
    make_image_folder_tar(labelled, classes=("a", "b", "c"), per_class=6)
    out = tmp_path / "run"
    assert main(_argv(root, out, f"--eval_dataset={labelled}", "--knn_k=5")) == 0
    assert all("knn_acc" in r for r in RunDir(out).read_metrics())
    results = json.loads((out / "results.json").read_text())
    assert results["train_images"] == 18 and results["test_images"] == 9 and 0 <= results["linear_acc"] <= 100
    assert main(_argv(root, tmp_path / "bad", f"--eval_dataset={root}")) == 2
    assert "is not a labelled set of images" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_the_imagenet_stem_from_96_px_and_the_cifar_stem_below():
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    big = sk.build_backbone("resnet18", image_size=96)
    conv, pool = big.body[0], big.body[3]
    assert (conv.kernel_size, conv.stride, conv.padding) == (ref.conv1.kernel_size, ref.conv1.stride, ref.conv1.padding)
    assert (pool.kernel_size, pool.stride, pool.padding) == (ref.maxpool.kernel_size, ref.maxpool.stride,
                                                             ref.maxpool.padding)
    want = [(k, v.shape) for k, v in ref.state_dict().items() if not k.startswith("fc.")]
    got = [(k, v.shape) for k, v in big.body.state_dict().items()]
    assert [s for _, s in got] == [s for _, s in want]  # torchvision's ResNet-18, layer for layer
    small = sk.build_backbone("resnet18", image_size=64)
    assert small.body[0].kernel_size == (3, 3) and small.body[0].stride == (1, 1)
    # AlexNet at 224 px ends on the 6 x 6 maps the SeLa / DeepCluster code flattens (256 * 6 * 6)
    alex = sk.build_backbone("alexnet_big", image_size=224).eval()
    assert alex.body(torch.zeros(1, 3, 224, 224)).shape == (1, 256, 6, 6)
    for name in ("convnet", "resnet18", "alexnet", "resnet50"):
        net = sk.build_backbone(name, image_size=96).eval()
        assert net(torch.rand(2, 3, 96, 96)).shape == (2, net.dim)


def test_views_follow_the_image_side(tmp_path):
    seen = []
    cfg = sk.TrainConfig(method="swav", image_size=96, device="cpu", batch_size=4, params=sk.METHODS["swav"].Params(
        num_prototypes=4, proj_hidden=8, proj_dim=8, n_local=2, local_size=0))
    m = sk.build_method(cfg, 8)
    m.backbone.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[-1]))
    m.training_step(torch.randint(0, 256, (4, 3, 96, 96), dtype=torch.uint8), torch.arange(4))
    assert seen == [96, 41]  # 2 full crops of the image's side, the small ones 3/7 of it
    sela = sk.build_method(sk.TrainConfig(method="sela", image_size=64, device="cpu"), 8)
    assert sk.augment_batch(torch.zeros(2, 3, 64, 64, dtype=torch.uint8), sela.aug).shape[-1] == 64
    with pytest.raises(sk.ConfigError, match="local_size=64: the small crops"):
        sk.validate(sk.TrainConfig(method="swav", image_size=64, params=sk.METHODS["swav"].Params(
            n_local=2, local_size=64, num_prototypes=100)))


@pytest.mark.parametrize("size,backbone", [(64, "convnet"), (96, "resnet18")])
def test_the_cli_trains_at_64_and_96_px(tmp_path, size, backbone):
    root = tmp_path / "tiles"
    write_photos(root, 16)
    out = tmp_path / "run"
    assert main(_argv(root, out, f"--image_size={size}", f"--backbone={backbone}", "--epochs=1")) == 0
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["model_info"]["image_size"] == size and state["config"]["image_size"] == size
    method = sk.load_run(out).method
    assert (method.backbone.body[0].stride == (2, 2)) == (size >= 96)


def _stl10_files(raw: Path, seed: int = 0) -> dict:
    """Tiny STL-10 binary files (train 2 per class, test 1 per class, 7 unlabelled): the arrays written."""
    rng = np.random.default_rng(seed)
    folder = raw / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", 20), ("test", 10), ("unlabeled", 7)):
        x = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        x.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")  # the files store each channel column-major
        out[split] = x
        if split != "unlabeled":
            y = (np.arange(n) % 10 + 1).astype(np.uint8)
            y.tofile(folder / f"{split}_y.bin")
            out[split + "_y"] = y.astype(np.int64) - 1
    (folder / "class_names.txt").write_text("\n".join(labdata.registry.STL10_CLASSES) + "\n")
    return out


def test_stl10_reads_its_official_binary_files_as_torchvision_does(lab_cache, monkeypatch):
    from torchvision.datasets import STL10

    _stl10_files(lab_cache / "raw")
    _register(monkeypatch, labdata.registry.SPECS["stl10"], lab_cache / "raw" / "stl10_binary")
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)  # its checksums are the real files'
    for split in ("train", "test", "unlabeled", "train+unlabeled"):
        ours = labdata.load("stl10", split, download=False)
        ref = STL10(str(lab_cache / "raw"), split=split)
        assert torch.equal(ours.images, torch.from_numpy(ref.data)), split
        assert ours.classes == ref.classes
        if split in ("unlabeled", "train+unlabeled"):
            assert ours.labels is None
        else:
            assert torch.equal(ours.labels, torch.from_numpy(ref.labels.astype(np.int64)))
    assert len(labdata.load("stl10", "unlabeled", subset=5, download=False)) == 5  # a count without labels
    assert labdata.load("stl10", "train", subset=1, download=False).labels.tolist().count(3) == 1


def test_the_cli_trains_on_stl10_and_evaluates_on_its_labelled_splits(tmp_path, lab_cache, monkeypatch, capsys):
    _stl10_files(lab_cache / "raw")
    _register(monkeypatch, labdata.registry.SPECS["stl10"], lab_cache / "raw" / "stl10_binary")
    out = tmp_path / "run"
    assert main(_argv("stl10", out, "--image_size=48", "--knn_k=5", "--epochs=1")) == 0
    # the self-supervised methods train on train+unlabeled (20 + 7), the kNN bank is train, the queries test
    assert "on stl10 (27 train / 10 test images, 48 px)" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["train_images"] == 20 and results["test_images"] == 10 and results["image_size"] == 48


def _fit(method_name, images, tmp, callbacks=(), resume=False, epochs=2):
    cfg = sk.TrainConfig(method=method_name, epochs=epochs, batch_size=8, device="cpu", knn_every=0,
                         params=sk.METHODS[method_name].Params(**{
                             "sela": dict(num_clusters=4, num_heads=2, mlp_hidden=8, relabel_every=1),
                             "deepcluster": dict(num_clusters=4, pca_dim=4, mlp_hidden=8),
                             "swav": dict(num_prototypes=8, proj_hidden=8, proj_dim=8, freeze_prototypes_steps=2),
                             "npid": dict(dim=8, num_noise=8, bank_init="features")}[method_name]))
    m = sk.build_method(cfg, len(images))
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None, run=RunDir(tmp) if tmp else None,
                  callbacks=callbacks, resume=resume)
    return m, hist


@pytest.mark.parametrize("name", ["sela", "deepcluster", "swav", "npid"])
def test_a_streamed_run_equals_the_in_memory_run(tmp_path, name):
    from labdata import FileImages, scan_images

    root = tmp_path / "tiles"
    write_photos(root, 40)
    memory = labdata.load_unlabelled(root, size=32).images
    source = sk.ImageSource(FileImages(scan_images(root), 32), 32, workers=2, fingerprint="x")
    assert torch.equal(source.materialize(), memory) and torch.equal(source[[3, 1]], memory[[3, 1]])
    a, ha = _fit(name, memory, None)
    b, hb = _fit(name, source, None)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k])), name
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]


def test_a_streamed_run_resumes_exactly(tmp_path):
    from labdata import FileImages, scan_images

    root = tmp_path / "tiles"
    write_photos(root, 40)
    source = sk.ImageSource(FileImages(scan_images(root), 32), 32, workers=2, fingerprint="tiles")
    full, hist_full = _fit("deepcluster", source, tmp_path / "a", epochs=3)

    class Interrupt(Exception):
        pass

    def stop(loop):
        if (loop.epoch, loop.batch) == (2, 2):
            raise Interrupt

    with pytest.raises(Interrupt):
        _fit("deepcluster", source, tmp_path / "b", callbacks=[sk.LambdaCallback(on_batch_start=stop)], epochs=3)
    saved = RunDir(tmp_path / "b").load_checkpoint()
    assert saved["epoch"] == 2 and saved["sampler"]["epochs_done"] == 2 and saved["data"]["fingerprint"] == "tiles"
    resumed, hist = _fit("deepcluster", source, tmp_path / "b", resume=True, epochs=3)
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist_full]


def test_the_cli_streams_on_request_and_refuses_a_compressed_archive(tmp_path, capsys):
    root = tmp_path / "tiles"
    write_photos(root, 24)
    out = tmp_path / "run"
    assert main(_argv(root, out, "--stream", "--workers=2", "--epochs=1")) == 0
    assert "streamed" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["streamed"] is True
    gz = tar_of(root, tmp_path / "tiles.tar.gz", "w:gz")
    assert main(_argv(gz, tmp_path / "gz", "--stream")) == 2
    assert "compressed archive" in capsys.readouterr().err and not (tmp_path / "gz").exists()
    assert main(_argv(gz, tmp_path / "gz2", "--epochs=1")) == 0  # in memory, the same archive trains


def test_bench_data_prints_a_rate_per_worker(capsys):
    from sslkit.bench.data import bench_data

    rows = bench_data(None, [32], [0, 1], per_worker=16, repeats=1)
    assert [(r["size"], r["workers"]) for r in rows] == [(32, 0), (32, 1)] and all(r["per_worker"] > 0 for r in rows)
    assert "per worker" in capsys.readouterr().out


def _two_process_worker(rank, world, port, root, out):
    import os

    import torch.distributed as tdist
    from labdata import FileImages, scan_images

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        for stream in (False, True):
            images = (sk.ImageSource(FileImages(scan_images(root), 32), 32, workers=1, fingerprint="t") if stream
                      else labdata.load_unlabelled(root, size=32).images)
            m, hist = _fit("sela", images, None)  # each process decodes its own share of every global batch
            out[(stream, rank)] = {k: v.detach().clone() for k, v in m.state_dict().items() if torch.is_tensor(v)}
    finally:
        tdist.destroy_process_group()


def test_two_processes_stream_their_shares_as_the_in_memory_run_slices_them(tmp_path):
    import torch.multiprocessing as mp

    from conftest import free_port

    root = tmp_path / "tiles"
    write_photos(root, 40)
    out = mp.Manager().dict()
    mp.spawn(_two_process_worker, args=(2, free_port(), root, out), nprocs=2, join=True)
    ref = out[(False, 0)]
    for key in ((False, 1), (True, 0), (True, 1)):
        assert all(torch.equal(ref[k], out[key][k]) for k in ref), key
