import json

import pytest
import torch

import sslkit as sk
from sslkit.config import ConfigError


def test_typed_overrides():
    cfg = sk.TrainConfig(method="supervised")  # the method's parameters at their defaults
    assert cfg.params == sk.METHODS["supervised"].Params()
    for key, value in sk.parse_overrides(["--lr=0.2", "--epochs", "3", "--params.num_classes=7",
                                          "--label-smoothing=0.1", "--compile"]).items():
        sk.set_value(cfg, key, value)
    assert cfg.lr == 0.2 and cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.params.num_classes == 7 and cfg.params.label_smoothing == 0.1 and cfg.compile is True
    model = sk.build_method(cfg, 10)
    assert model.head.out_features == 7  # the override reached the network


def test_bad_overrides_have_clear_messages():
    cfg = sk.TrainConfig(method="supervised")
    with pytest.raises(ConfigError, match="unknown option --lrr.*Did you mean --lr"):
        sk.set_value(cfg, "lrr", "0.1")
    with pytest.raises(ConfigError, match="--epochs=ten: expected a value of type int"):
        sk.set_value(cfg, "epochs", "ten")
    with pytest.raises(ConfigError, match="written --key=value"):
        sk.parse_overrides(["lr=0.1"])
    with pytest.raises(ConfigError, match="no preset 'nope' for method 'supervised'"):
        sk.apply_preset(cfg, "nope")


def _toy_images(n=256, seed=0):
    """Two classes a ConvNet separates easily: bright-left or bright-right images."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 3, 32, 32, generator=g) * 0.3
    x[y == 0, :, :, :16] += 0.6
    x[y == 1, :, :, 16:] += 0.6
    return (x.clamp(0, 1) * 255).to(torch.uint8), y


def test_supervised_fit_learns_and_writes_a_run(tmp_path):
    images, labels = _toy_images()
    cfg = sk.TrainConfig(method="supervised", epochs=4, batch_size=32, lr=0.05, knn_every=2, device="cpu")
    cfg.params = sk.METHODS["supervised"].Params(num_classes=2)
    method = sk.build_method(cfg, len(images))
    run = sk.RunDir(tmp_path / "run")
    hist = sk.fit(method, images, cfg, torch.device("cpu"), labels=labels,
                  eval_data=(images, labels, images, labels), run=run, log=None)
    assert len(hist) == 4
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["knn_acc"] > 90
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["epochs"] == 4 and saved["params"]["num_classes"] == 2
    assert (tmp_path / "run" / "git_sha.txt").read_text().strip()
    assert len(run.read_metrics()) == 4
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 4


def test_a_nan_loss_stops_the_run_before_its_checkpoint(tmp_path):
    """Losses stay on the device between reports; a NaN is still caught, named by its step,
    and the epoch's checkpoint is never written."""
    images, labels = _toy_images()
    cfg = sk.TrainConfig(method="supervised", epochs=2, batch_size=8, knn_every=0, device="cpu")
    cfg.params = sk.METHODS["supervised"].Params(num_classes=2)
    method = sk.build_method(cfg, len(images))
    poison = sk.LambdaCallback(on_loss=lambda loop, loss, logs: loss * float("nan") if loop.batch == 2 else None)
    run = sk.RunDir(tmp_path / "run")
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1, step 2"):
        sk.fit(method, images, cfg, torch.device("cpu"), labels=labels, run=run, log=None, callbacks=[poison])
    assert not run.has_checkpoint() and run.read_metrics() == []


def test_fit_rejects_batch_larger_than_data():
    images, labels = _toy_images(16)
    cfg = sk.TrainConfig(method="supervised", epochs=1, batch_size=64)
    method = sk.build_method(cfg, sk.DataInfo(len(images), 2))
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 16 training images"):
        sk.fit(method, images, cfg, torch.device("cpu"), labels=labels, log=None)


def test_lr_schedule_warmup_and_cosine():
    from sslkit.optim import lr_at

    cfg = sk.TrainConfig(lr=0.1, batch_size=256, epochs=10, warmup_epochs=2)
    assert lr_at(cfg, 0, 10) == pytest.approx(0.1 / 20)
    assert lr_at(cfg, 19, 10) == pytest.approx(0.1)
    assert lr_at(cfg, 20, 10) == pytest.approx(0.1)
    assert lr_at(cfg, 60, 10) == pytest.approx(0.05)  # halfway through the cosine
    assert lr_at(cfg, 100, 10) == pytest.approx(0.0, abs=1e-12)


def test_dist_helpers_are_noops_without_process_group():
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(sk.dist.all_reduce_sum(t.clone()), t)
    assert torch.equal(sk.dist.all_gather_cat(t), t)
    assert sk.dist.world_size() == 1 and sk.dist.rank() == 0


def test_device_choice():
    assert sk.pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            sk.pick_device("cuda")


def test_collapse_warning():
    advice = sk.Method.collapse_advice
    assert advice({"epoch": 3, "cluster_entropy": 0.9}) is None
    msg = advice({"epoch": 3, "cluster_entropy": 0.1, "largest_cluster": 0.95})
    assert "COLLAPSE at epoch 3" in msg and "95%" in msg
    assert advice({"epoch": 1}) is None
    # SwAV's own check comes after the cluster-size one
    assert "COLLAPSE at epoch 3" in sk.METHODS["swav"].collapse_advice({"epoch": 3, "cluster_entropy": 0.1})
    assert "ln K" in sk.METHODS["swav"].collapse_advice({"epoch": 3, "loss_over_lnK": 0.99, "code_entropy": 0.99})


def test_deepcluster_without_safeguards_on_constant_images_warns():
    images = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)  # every image identical: one cluster
    cfg = sk.TrainConfig(method="deepcluster", epochs=1, batch_size=16, knn_every=0, device="cpu")
    cfg.params = sk.METHODS["deepcluster"].Params(num_clusters=4, pca_dim=4, mlp_hidden=8, reseed_empty=False)
    method = sk.build_method(cfg, len(images))
    with pytest.warns(RuntimeWarning, match="COLLAPSE"):
        hist = sk.fit(method, images, cfg, torch.device("cpu"), log=None)
    assert hist[0]["collapse"]
