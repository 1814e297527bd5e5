import pytest
import torch

import sslkit as sk


def _images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)


def _cfg(**kw):
    cfg = sk.TrainConfig(method="sela", backbone="convnet", epochs=3, batch_size=32, lr=0.05, knn_every=0,
                         device="cpu")
    cfg.params = sk.METHODS["sela"].Params(num_clusters=4, num_heads=2, num_relabels=2, **kw)
    return cfg


def test_initial_labels_are_a_random_equipartition():
    m = sk.build_method(_cfg(), 96)
    assert m.labels.shape == (2, 96)
    for t in range(2):
        assert torch.bincount(m.labels[t], minlength=4).tolist() == [24] * 4
    assert not torch.equal(m.labels[0], m.labels[1])


def test_relabel_schedule():
    m = sk.build_method(_cfg(), 96)
    assert m.relabel_epochs(3) == [1, 2]
    m.params.num_relabels = 5
    assert m.relabel_epochs(11) == [1, 3, 5, 7, 9]
    assert m.relabel_epochs(1) == []
    m.params.relabel_at_start = True
    assert m.relabel_epochs(1) == [0] and m.relabel_epochs(11)[:2] == [0, 1]
    m.params.relabel_every = 1  # once per epoch, whatever the length (the paper's CIFAR schedule)
    assert m.relabel_epochs(12) == list(range(12)) and m.relabel_epochs(100) == list(range(100))
    m.params.relabel_every, m.params.relabel_at_start = 3, False
    assert m.relabel_epochs(10) == [3, 6, 9]


def test_lab_preset_relabels_every_epoch_at_any_budget():
    cfg = sk.apply_preset(sk.TrainConfig(method="sela", device="cpu"), "lab")
    m = sk.build_method(cfg, 96)
    for epochs in (cfg.epochs, 100):
        assert m.relabel_epochs(epochs) == list(range(epochs))


def test_negative_relabel_schedule_is_refused():
    cfg = _cfg()
    cfg.params.relabel_every = -1
    with pytest.raises(sk.ConfigError, match="relabel_every"):
        cfg.validate()


def test_relabel_solves_the_equipartition_problem_on_the_heads_log_softmax():
    """With a large lambda the relabelling is the exact optimum of SeLa's problem: the equipartitioned hard
    labelling of least cross-entropy -log P, which scipy's assignment solver finds independently."""
    from references import equipartition_optimum

    images = _images(24)
    m = sk.build_method(_cfg(exact_equipartition=True, lam=200.0, sinkhorn_tol=1e-6), len(images))
    with torch.no_grad():  # stretch the heads' outputs so the optimum is well above the rounding noise
        for h in m.heads:
            h.weight.mul_(50)
    info = m.relabel(images)
    m.eval()
    for t in range(2):
        with torch.no_grad():
            cost = -torch.log_softmax(m.heads[t](m.mlp(m.backbone(images.float() / 255))), 1).double()
        assert torch.bincount(m.labels[t], minlength=4).tolist() == [6] * 4
        got = float(cost[torch.arange(24), m.labels[t]].sum())
        assert got == pytest.approx(equipartition_optimum(cost.numpy()), rel=1e-6)
    assert info["cluster_entropy"] > 0.99


def test_training_reduces_the_loss_and_labels_are_saved():
    images = _images()
    cfg = _cfg()
    sk.seed_everything(0)
    m = sk.build_method(cfg, len(images))
    before = m.labels.clone()
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None)
    assert hist[0]["loss"] > hist[-1]["loss"]
    assert "sinkhorn_iters" in hist[1] and "nmi_prev" in hist[1]
    assert not torch.equal(before, m.labels)
    state = m.state_dict()
    fresh = sk.build_method(cfg, len(images))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.labels, m.labels)


def test_sela_presets_resolve():
    # the CIFAR presets take lambda from the cited code (cifar.py's default 10, which scripts/cifar.sh
    # leaves unset); the lab preset keeps the paper's ImageNet value
    for name, lam in (("lab", 25.0), ("cifar10", 10.0), ("cifar100", 10.0), ("svhn", 10.0)):
        cfg = sk.TrainConfig(method="sela")
        sk.apply_preset(cfg, name)
        assert cfg.params.lam == lam
    cfg = sk.TrainConfig(method="sela")
    sk.apply_preset(cfg, "cifar10")
    assert (cfg.backbone, cfg.params.num_clusters, cfg.params.num_heads) == ("alexnet", 128, 10)
