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


def _selfabel_imagenet(e):  # yukimasano/self-label main.py: lr * 0.1 ** (epoch // lrdrop) before 350, lr * 0.1 ** 3 after
    return 0.05 * (0.1 ** (e // 150)) if e < 350 else 0.05 * 0.1 ** 3


def _lemniscate_imagenet(e):  # zhirongw/lemniscate.pytorch main.py adjust_learning_rate
    return 0.03 if e < 120 else 0.03 * 0.1 if e < 160 else 0.03 * 0.01


def _swav_imagenet(e):  # facebookresearch/swav main_swav.py: final_lr + 0.5 (base - final) (1 + cos(pi t / T)) after warm-up
    if e < 10:
        return None
    return 0.0048 + 0.5 * (4.8 - 0.0048) * (1 + math.cos(math.pi * (e - 10) / (800 - 10)))


# method, the batch per process, processes, epochs, the rate at epoch e: the ImageNet recipes as their scripts run
# them (SwAV: 64 per GPU on 64 GPUs; the others one process, or DataParallel, with the whole batch)
IMAGENET = [
    ("sela", 256, 1, 400, _selfabel_imagenet),
    ("deepcluster", 256, 1, 200, lambda e: 0.05),  # main.py: SGD lr 0.05, never changed
    ("npid", 256, 1, 200, _lemniscate_imagenet),
    ("swav", 64, 64, 800, _swav_imagenet),
    ("supervised", 256, 1, 90, lambda e: 0.1 * 0.1 ** (e // 30)),  # pytorch/examples imagenet main.py
]

# what the sources state besides the rate (written from the scripts and papers, not from the presets)
IMAGENET_RECIPES = {
    "sela": {"backbone": "alexnet_big", "image_size": 224, "weight_decay": 1e-5, "momentum": 0.9,
             "params.num_clusters": 3000, "params.num_heads": 10, "params.num_relabels": 100, "params.lam": 25.0,
             "params.mlp_hidden": 4096, "params.crop_scale_min": 0.08, "params.gray_p": 0.2},
    "deepcluster": {"backbone": "alexnet_big", "image_size": 224, "weight_decay": 1e-5, "momentum": 0.9,
                    "params.num_clusters": 10000, "params.pca_dim": 256, "params.sobel": True,
                    "params.mlp_hidden": 4096, "params.uniform_sampling": True, "params.jitter_strength": 0.0},
    "npid": {"backbone": "resnet50", "image_size": 224, "weight_decay": 1e-4, "momentum": 0.9, "params.dim": 128,
             "params.num_noise": 4096, "params.temperature": 0.07, "params.bank_momentum": 0.5,
             "params.head_bn": False, "params.crop_scale_min": 0.2, "params.gray_p": 0.2},
    "swav": {"backbone": "resnet50", "image_size": 224, "weight_decay": 1e-6, "optimizer": "lars", "lars_eta": 0.001,
             "lars_clip": False, "warmup_epochs": 10, "params.num_prototypes": 3000, "params.queue_length": 0,
             "params.proj_hidden": 2048, "params.proj_dim": 128, "params.epsilon": 0.05, "params.sinkhorn_iters": 3,
             "params.temperature": 0.1, "params.freeze_prototypes_steps": 313, "params.n_local": 6,
             "params.local_size": 96, "params.global_scale_min": 0.14, "params.local_scale_min": 0.05,
             "params.jitter_strength": 1.0, "params.gray_p": 0.2, "params.blur_p": 0.5},
    "supervised": {"backbone": "resnet50", "image_size": 224, "weight_decay": 1e-4, "momentum": 0.9,
                   "params.crop": "resized", "params.num_classes": 1000},
}


@pytest.mark.parametrize("method,batch,processes,epochs,rate", IMAGENET, ids=lambda v: v if isinstance(v, str) else "")
def test_imagenet_preset_learning_rate_equals_its_source(method, batch, processes, epochs, rate):
    cfg = sk.apply_preset(sk.TrainConfig(method=method), "imagenet")
    assert (cfg.batch_size, cfg.epochs, cfg.dataset) == (batch, epochs, "imagenet")
    steps = 5
    for e in range(epochs):
        want = rate(e)
        if want is not None:
            got = lr_at(cfg, e * steps, steps, world_size=processes)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), f"epoch {e}"


@pytest.mark.parametrize("method", sorted(IMAGENET_RECIPES))
def test_imagenet_preset_states_its_sources_recipe(method):
    cfg = sk.apply_preset(sk.TrainConfig(method=method), "imagenet")
    for key, want in IMAGENET_RECIPES[method].items():
        obj, name = (cfg.params, key.split(".", 1)[1]) if key.startswith("params.") else (cfg, key)
        assert getattr(obj, name) == want, f"{method} imagenet: {key} is {getattr(obj, name)!r}, the source {want!r}"
    if method == "swav":  # 2 x 224 + 6 x 96: the full crops take the images' side
        assert cfg.image_size == 224 and cfg.params.n_local == 6 and cfg.params.local_size == 96


def test_every_full_scale_preset_is_in_the_table():
    listed = {(m, p) for m, p, *_ in SOURCES} | {(m, "imagenet") for m, *_ in IMAGENET}
    for method in sk.METHODS:
        for preset in sk.presets_for(method):
            if preset.name != "lab":
                assert (method, preset.name) in listed, f"{method}/{preset.name} has no row in SOURCES"


def test_every_preset_is_a_valid_config(monkeypatch):
    processes = {m: w for m, _, w, *_ in IMAGENET}
    for method in sk.METHODS:
        for preset in sk.presets_for(method):
            world = processes.get(method, 1) if preset.name == "imagenet" else 1
            monkeypatch.setenv("WORLD_SIZE", str(world))  # validated for the processes its source trains on
            cfg = sk.apply_preset(sk.TrainConfig(method=method, device="cpu"), preset.name)
            cfg.validate()
            assert preset.source, f"{method}/{preset.name} cites no source"


def test_swav_imagenet_on_one_process_is_refused_with_the_queue_to_add(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    cfg = sk.apply_preset(sk.TrainConfig(method="swav", device="cpu"), "imagenet")
    with pytest.raises(sk.ConfigError, match="Use a queue"):
        cfg.validate()


def test_lab_presets_compare_methods_on_one_network_data_and_evaluation():
    """The chapters' presets: every method on the same network, data and evaluation, in precision auto
    (bf16 only where the hardware does it: tests/test_backbones.py); their epochs differ, each fitting
    the lab's time budget (measured in the stored runs, not here: no timed tests). The sweep's lab
    budget trains the presets as they are, the long budget for 100 epochs."""
    from sslkit.sweep import BUDGETS

    assert BUDGETS == {"lab": ("lab", None), "long": ("lab", 100)}
    shared = {(c.backbone, c.subset, c.precision, c.knn_k, c.knn_temperature)
              for c in (sk.apply_preset(sk.TrainConfig(method=m, device="cpu"), "lab") for m, cls in sk.METHODS.items()
                        if cls.__module__.startswith("sslkit."))}  # not a test's own method
    assert shared == {("convnet", "lab", "auto", 200, 0.1)}
