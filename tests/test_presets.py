"""Every full-scale preset trains at the learning rate its cited source trains at, epoch by epoch.

The table below is written from the sources themselves (batch size, learning rate at that
batch, schedule, epochs), not from the presets; the test derives the rate of every epoch
from ``lr_at`` and compares it with the source's rule.
"""

import math

import pytest

import sslkit as sk
from sslkit.optim import lr_at


def _sela(e):  # yukimasano/self-label cifar.py, 400 epochs: lr * 0.1 ** ((epoch - 160) // 80) from epoch 160
    return 0.03 * (0.1 ** ((e - 160) // 80) if e >= 160 else 1.0)


def _npid(e):  # zhirongw/lemniscate.pytorch cifar.py: lr * 0.1 ** ((epoch - 80) // 40) from epoch 80
    return 0.03 * (0.1 ** ((e - 80) // 40) if e >= 80 else 1.0)


def _cosine(lr, epochs, warmup=0):
    def rate(e):  # per-epoch view of a per-step cosine: the rate at the first step of epoch e
        if e < warmup:
            return None  # warm-up is checked separately
        return lr * 0.5 * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup)))
    return rate


# method, preset, the source's batch size, epochs, its rate at epoch e (None: not compared)
SOURCES = [
    ("sela", "cifar10", 128, 400, _sela), ("sela", "cifar100", 128, 400, _sela), ("sela", "svhn", 128, 400, _sela),
    ("npid", "cifar10", 128, 200, _npid), ("npid", "cifar100", 128, 200, _npid), ("npid", "svhn", 128, 200, _npid),
    # DeepCluster main.py: batch 256, SGD lr 0.05, constant
    ("deepcluster", "cifar10", 256, 200, lambda e: 0.05), ("deepcluster", "cifar100", 256, 200, lambda e: 0.05),
    ("deepcluster", "svhn", 256, 200, lambda e: 0.05),
    # solo-learn swav.yaml: batch 256, LARS lr 0.6 (x batch/256), 10 warm-up epochs, cosine over 1000
    ("swav", "cifar10", 256, 1000, _cosine(0.6, 1000, 10)), ("swav", "cifar100", 256, 1000, _cosine(0.6, 1000, 10)),
    ("swav", "svhn", 256, 1000, _cosine(0.6, 1000, 10)),
    # kuangliu/pytorch-cifar main.py: batch 128, lr 0.1, CosineAnnealingLR(T_max=200)
    ("supervised", "cifar10", 128, 200, _cosine(0.1, 200)), ("supervised", "cifar100", 128, 200, _cosine(0.1, 200)),
    ("supervised", "svhn", 128, 40, _cosine(0.1, 40)),
]


@pytest.mark.parametrize("method,preset,batch,epochs,rate", SOURCES, ids=lambda v: v if isinstance(v, str) else "")
def test_preset_learning_rate_equals_its_source(method, preset, batch, epochs, rate):
    cfg = sk.apply_preset(sk.TrainConfig(method=method), preset)
    assert cfg.batch_size == batch and cfg.epochs == epochs
    steps = 7  # any number of steps per epoch
    for e in range(epochs):
        want = rate(e)
        if want is not None:
            assert lr_at(cfg, e * steps, steps) == pytest.approx(want, rel=1e-9, abs=1e-12), f"epoch {e}"
    # under torchrun the rate follows the global batch: 8 processes of `batch` = 8x the source's batch
    e = epochs - 1
    assert lr_at(cfg, e * steps, steps, world_size=8) == pytest.approx(8 * rate(e), rel=1e-9, abs=1e-12)


def test_every_full_scale_preset_is_in_the_table():
    listed = {(m, p) for m, p, *_ in SOURCES}
    for method in sk.METHODS:
        for preset in sk.presets_for(method):
            if preset.name != "lab":
                assert (method, preset.name) in listed, f"{method}/{preset.name} has no row in SOURCES"


def test_every_preset_is_a_valid_config():
    for method in sk.METHODS:
        for preset in sk.presets_for(method):
            cfg = sk.apply_preset(sk.TrainConfig(method=method, device="cpu"), preset.name)
            cfg.validate()
            assert preset.source, f"{method}/{preset.name} cites no source"


def test_lab_presets_compare_methods_on_one_network_data_and_evaluation():
    """The chapters' presets: every method on the same network, data and evaluation, in precision auto
    (bf16 only where the hardware does it: tests/test_backbones.py); their epochs differ, each fitting
    the lab's time budget (measured in the stored runs, not here: no timed tests). The sweep's lab
    budget trains the presets as they are, the long budget for 100 epochs."""
    from sslkit.sweep import BUDGETS

    assert BUDGETS == {"lab": ("lab", None), "long": ("lab", 100)}
    shared = {(c.backbone, c.subset, c.precision, c.knn_k, c.knn_temperature)
              for c in (sk.apply_preset(sk.TrainConfig(method=m, device="cpu"), "lab") for m in sk.METHODS)}
    assert shared == {("convnet", "lab", "auto", 200, 0.1)}
