"""Every method's ``imagenet`` preset trains a few steps on a tiny folder in ImageNet's layout, on the CPU.

The folder is ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (what ``LABDATA_IMAGENET`` names,
the ``imagenet`` data set the presets read); each preset keeps its backbone, 224 px images,
crops, optimiser and schedule, and only its sizes shrink to the batch of 4 (``smoke_params``:
K, heads, hidden widths), as a full recipe cannot run on four images; and a run of one epoch
drops what is stated in epochs (warm-up, the step schedule's milestones), whose rates
tests/test_presets.py checks against the sources.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import sslkit as sk
from sslkit.runs import RunDir
from sslkit.train import main

WNIDS = ("n01440764", "n01443537")


@pytest.fixture(scope="module")
def imagenet_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet") / "ILSVRC2012"
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for c, wnid in enumerate(WNIDS):
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, (60 + 7 * i, 80, 3), dtype=np.uint8)  # JPEGs of ImageNet's aspect
                Image.fromarray(img).save(root / split / wnid / f"{wnid}_{i}.JPEG", format="JPEG", quality=90)
    return root


def _smoke_options(method: str, batch: int) -> list[str]:
    """--params.KEY=VALUE for the sizes ``smoke_params`` shrinks (everything else is the preset's)."""
    cls = sk.METHODS[method]
    cfg = sk.apply_preset(sk.TrainConfig(method=method), "imagenet")
    small = cls.smoke_params(cfg.params, batch)
    opts = [f"--params.{f.name}={getattr(small, f.name)}" for f in dataclasses.fields(small)
            if getattr(small, f.name) != getattr(cfg.params, f.name)]
    epochs = ["--warmup_epochs=0"] + (["--lr_milestones="] if cfg.lr_milestones else [])
    return opts + epochs + (["--params.num_classes=0"] if method == "supervised" else [])


@pytest.mark.parametrize("method", sorted(m for m, c in sk.METHODS.items() if "imagenet" in c.presets))
def test_the_imagenet_preset_trains_a_few_steps_on_a_folder_in_imagenets_layout(method, imagenet_folder,
                                                                                 tmp_path, monkeypatch):
    monkeypatch.setenv("LABDATA_IMAGENET", str(imagenet_folder))
    out = tmp_path / "run"
    argv = [f"--method={method}", "--preset=imagenet", "--batch_size=4", "--epochs=1", "--eval_subset=full",
            "--knn_k=3", "--device=cpu", "--workers=0", f"--output_dir={out}", *_smoke_options(method, 4)]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["dataset"], cfg["image_size"]) == ("imagenet", 224)
    preset = sk.apply_preset(sk.TrainConfig(method=method), "imagenet")
    assert cfg["backbone"] == preset.backbone and cfg["lr"] == preset.lr and cfg["optimizer"] == preset.optimizer
    (record,) = RunDir(out).read_metrics()
    assert math.isfinite(record["loss"]) and "knn_acc" in record  # 8 training images: 2 steps of 4
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["model_info"]["image_size"] == 224 and state["step"] == 2
    results = json.loads((out / "results.json").read_text())
    assert results["train_images"] == 8 and results["test_images"] == 4 and results["image_size"] == 224
