"""A fifth method defined in this file alone runs through everything the built-in ones do.

``Toy`` is defined here and nowhere else: registering it is subclassing ``sk.Method`` with a
``name``; the command line and the processes it starts import it from ``SSLKIT_PLUGINS``.
It goes through ``sk.fit``, ``python -m sslkit.train``, an interrupted and resumed run, two
processes with identical replicas, the sweep with its results table, and ``bench train``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

import sslkit as sk
from sslkit.config import opt

HERE = Path(__file__).resolve()


@dataclass
class ToyParams(sk.ViewParams):
    k: int = opt(4, "clusters")


class Toy(sk.Method):
    """Each image is trained to predict its cluster, the head's own argmax of the un-augmented image,
    relabelled at the start of every epoch after the first."""

    name = "toy"
    title = "Toy (a test's method)"
    Params = ToyParams
    per_sample_buffers = ("targets",)

    def __init__(self, backbone, params, num_samples):
        super().__init__(backbone, params, num_samples)
        self.head = nn.Linear(backbone.dim, params.k)
        g = torch.Generator().manual_seed(0)
        self.register_buffer("targets", torch.randint(0, params.k, (num_samples,), generator=g))
        self.aug = params.view_recipe()

    @classmethod
    def check_config(cls, cfg, data=None):
        if cfg.params.k < 2:
            raise sk.ConfigError("toy: --params.k must be at least 2")

    @classmethod
    def cluster_count(cls, params):
        return params.k

    def on_epoch_start(self, ctx):
        if ctx.epoch == 0:
            return {}
        old = self.targets.clone()
        self.targets.copy_(sk.batched_argmax(lambda x: self.head(self.backbone(x)), ctx.images, module=self)
                           .to(self.targets.device))
        return {"nmi_prev": sk.nmi(old.cpu(), self.targets.cpu())}

    def training_step(self, images, indices, labels=None):
        logits = self.head(self.backbone(sk.augment_batch(images, self.aug)))
        return F.cross_entropy(logits, self.targets[indices]), {}

    def pseudo_labels(self):
        return self.targets

    def predict_clusters(self, images):
        return [sk.batched_argmax(lambda x: self.head(self.backbone(x)), images, module=self)]


Toy.add_preset("lab", source="this test", description="the toy method on a tiny folder", backbone="convnet",
               epochs=2, batch_size=8, lr=0.05, precision="fp32", **{"params.k": 4})

N = 48


def _images(n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)


def _cfg(epochs=3):
    return sk.TrainConfig(method="toy", epochs=epochs, batch_size=8, lr=0.05, knn_every=0, device="cpu",
                          precision="fp32")


def _env(**extra):
    return dict(os.environ, SSLKIT_PLUGINS=str(HERE), PYTHONHASHSEED="0", **extra)


def test_the_registry_finds_it_and_nothing_outside_the_methods_names_a_method():
    assert sk.METHODS["toy"] is Toy and "toy" in sk.presets_for("toy")[0].method
    assert sk.TrainConfig(method="toy").params == ToyParams()
    with pytest.raises(sk.ConfigError, match="toy: --params.k must be at least 2"):
        sk.validate(sk.TrainConfig(method="toy", params=ToyParams(k=1)))
    names = [n for n in sk.METHODS if n != "toy"]
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(names))
    root = HERE.parents[1] / "sslkit"
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") if "methods" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"a method is named outside sslkit/methods/: {offenders}"


def test_fit_trains_it_and_resume_equals_an_uninterrupted_run(tmp_path):
    images = _images()
    full = sk.build_method(_cfg(), N)
    hist = sk.fit(full, images, _cfg(), log=None, run=sk.RunDir(tmp_path / "a"), true_labels=torch.arange(N) % 4)
    assert len(hist) == 3 and "nmi_prev" in hist[1] and "nmi_true" in hist[0]

    def stop(loop):
        if (loop.epoch, loop.batch) == (2, 1):
            raise KeyboardInterrupt

    broken = sk.build_method(_cfg(), N)
    with pytest.raises(KeyboardInterrupt):
        sk.fit(broken, images, _cfg(), log=None, run=sk.RunDir(tmp_path / "b"),
               callbacks=[sk.LambdaCallback(on_batch_start=stop)])
    resumed = sk.build_method(_cfg(), N)
    sk.fit(resumed, images, _cfg(), log=None, run=sk.RunDir(tmp_path / "b"), resume=True)
    for k, v in full.state_dict().items():
        if torch.is_tensor(v):
            assert torch.equal(v, resumed.state_dict()[k]), k


def test_the_command_line_trains_and_resumes_it(tmp_path, image_folder_tar):
    path, _ = image_folder_tar
    out = tmp_path / "run"
    args = [sys.executable, "-m", "sslkit.train", "--method", "toy", "--preset", "lab", "--dataset", str(path),
            "--subset", "full", "--batch_size", "4", "--device", "cpu", "--output_dir", str(out)]
    r = subprocess.run(args, env=_env(), capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["heads"][0]["k"] == 4 and 0 <= results["knn_acc"] <= 100
    # a run killed after its first epoch's checkpoint: the same command resumes it
    ckpt = out / "checkpoints"
    (out / "results.json").unlink()
    (ckpt / "prev.pt").replace(ckpt / "last.pt")
    again = subprocess.run(args, env=_env(), capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "resumed" in again.stdout, again.stderr[-2000:]
    assert [m["epoch"] for m in sk.RunDir(out, writer=False).read_metrics()] == [1, 2]
    # without the plugin the method is unknown, with a hint
    bare = subprocess.run(args[:5], env=dict(os.environ, SSLKIT_PLUGINS=""), capture_output=True, text=True)
    assert bare.returncode == 2 and "unknown method 'toy'" in bare.stderr and "SSLKIT_PLUGINS" in bare.stderr


def _worker(rank, world, port, out):
    import torch.distributed as tdist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        m = sk.build_method(_cfg(2), N)
        sk.fit(m, _images(), _cfg(2), log=None)
        out[rank] = {k: v.detach().clone() for k, v in m.state_dict().items() if torch.is_tensor(v)}
    finally:
        tdist.destroy_process_group()


def test_two_processes_keep_identical_replicas():
    from conftest import free_port

    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), out), nprocs=2, join=True)
    a, b = out[0], out[1]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between the processes"


def test_the_sweep_and_its_table_and_bench_train(tmp_path, image_folder_tar, capsys):
    from sslkit import sweep as sw
    from sslkit.bench import __main__ as bench

    path, _ = image_folder_tar
    cells = sw.plan(["random", "toy"], [str(path)], [0], "lab", ["--subset=full", "--epochs=1", "--batch_size=4",
                                                               "--knn_k=3"])
    results = tmp_path / "runs.jsonl"
    sw.sweep(cells, tmp_path / "root", results, inprocess=True, umap_seed=None)
    lines = sw.read_results(results)
    assert [r["method"] for r in lines] == ["random", "toy"] and lines[1]["num_clusters"] == 4
    assert "| Toy (a test's method) |" in sw.table_markdown(sw.results_table(lines))
    bench.main(["train", "--methods", "toy", "--backbones", "convnet", "--batch-size", "8", "--steps", "1"])
    assert re.search(r"^\s+toy\s+convnet\s+\d+", capsys.readouterr().out, re.M)
