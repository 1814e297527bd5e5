"""NPID: NCE loss against the formula, memory bank rule, Monte-Carlo normaliser, training."""

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import sslkit as sk
from conftest import free_port


def _unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_nce_loss_equals_hand_written_formula():
    bank = _unit(6, 4, 0)
    f = _unit(2, 4, 1)
    idx = torch.tensor([1, 4])
    noise = torch.tensor([[0, 2, 2], [5, 3, 1]])
    tau, z, n, m = 0.5, 7.5, 6, 3
    scores = sk.nce_scores(f, idx, noise, bank, tau)
    expected = 0.0
    for b in range(2):
        def p(j):
            return math.exp(sum(bank[j, d].item() * f[b, d].item() for d in range(4)) / tau) / z
        ppos = p(idx[b].item())
        expected += -math.log(ppos / (ppos + m / n))
        for j in noise[b].tolist():
            expected += -math.log(1 - p(j) / (p(j) + m / n))
    assert sk.nce_loss(scores, z, n).item() == pytest.approx(expected / 2, rel=1e-5)


def test_shared_noise_scores_equal_per_example_scores():
    bank, f, idx = _unit(50, 8, 0), _unit(4, 8, 1), torch.tensor([3, 9, 27, 41])
    shared = sk.sample_noise(4, 7, 50, "cpu", torch.Generator().manual_seed(0), shared=True)
    assert shared.shape == (1, 7)
    a = sk.nce_scores(f, idx, shared, bank, 0.1)
    b = sk.nce_scores(f, idx, shared.expand(4, 7), bank, 0.1)
    assert torch.allclose(a, b, rtol=1e-5)


def test_exact_softmax_is_cross_entropy_over_the_bank():
    bank, f, idx = _unit(10, 5, 0), _unit(3, 5, 1), torch.tensor([0, 7, 3])
    tau = 0.1
    ref = 0.0
    for b in range(3):
        logits = [(bank[j] @ f[b]).item() / tau for j in range(10)]
        ref += -(logits[idx[b]] - math.log(sum(math.exp(x) for x in logits)))
    assert sk.exact_instance_loss(f, idx, bank, tau).item() == pytest.approx(ref / 3, rel=1e-5)
    assert torch.allclose(sk.exact_normalizer(f, bank, tau),
                          torch.tensor([sum(math.exp((bank[j] @ f[b]).item() / tau) for j in range(10))
                                        for b in range(3)]), rtol=1e-5)


def test_bank_update_is_the_momentum_rule_and_stays_unit_norm():
    bank = _unit(8, 4, 0)
    old = bank.clone()
    f = _unit(3, 4, 1)
    idx = torch.tensor([2, 5, 6])
    sk.update_memory_bank(bank, idx, f, momentum=0.5)
    for row, i in enumerate(idx.tolist()):
        mixed = 0.5 * old[i] + 0.5 * f[row]
        assert torch.allclose(bank[i], mixed / mixed.norm(), atol=1e-6)
    untouched = [i for i in range(8) if i not in idx.tolist()]
    assert torch.equal(bank[untouched], old[untouched])
    assert torch.allclose(bank.norm(dim=1), torch.ones(8), atol=1e-6)


def test_monte_carlo_normaliser_approaches_exact_as_m_grows():
    bank, f = _unit(2000, 16, 0), _unit(64, 16, 1)
    tau = 0.2
    errors = [sum(sk.nce_estimate_error(f, bank, tau, m, torch.Generator().manual_seed(s)) for s in range(5)) / 5
              for m in (4, 64, 1024, 16384)]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[-1] < 0.02
    # the batch-level estimate the method uses: N * mean over noise scores
    noise = sk.sample_noise(64, 16384, 2000, "cpu", torch.Generator().manual_seed(0))
    scores = sk.nce_scores(f, torch.zeros(64, dtype=torch.long), noise, bank, tau)[:, 1:]
    z_mc = sk.monte_carlo_normalizer(scores, 2000)
    assert z_mc == pytest.approx(sk.exact_normalizer(f, bank, tau).mean().item(), rel=0.01)


def test_proximal_term():
    f, v = _unit(4, 3, 0), _unit(4, 3, 1)
    assert sk.proximal_term(f, v).item() == pytest.approx(((f - v) ** 2).sum(1).mean().item())
    assert sk.proximal_term(f, f).item() == 0.0


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)  # n distinct instances


def _cfg(loss="nce", **kw):
    cfg = sk.TrainConfig(method="npid", epochs=8, batch_size=32, lr=0.1, knn_every=0, device="cpu",
                         schedule="constant")
    args = dict(dim=16, loss=loss, num_noise=32, temperature=0.1)
    args.update(kw)
    cfg.params = sk.METHODS["npid"].Params(**args)
    return cfg


@pytest.mark.parametrize("loss", ["nce", "softmax"])
def test_a_few_steps_reduce_the_loss_and_fill_the_bank(loss):
    # distinct random images, mild views (so instances stay distinguishable), bank from features
    n = 256 if loss == "nce" else 64
    images = _images(n)
    cfg = _cfg(loss, proximal=0.5, bank_init="features", jitter_strength=0.0, gray_p=0.0, crop_scale_min=0.8,
               num_noise=64, temperature=0.2 if loss == "nce" else 0.1)
    cfg.epochs, cfg.batch_size, cfg.lr = 12, 64 if loss == "nce" else 32, 0.2 if loss == "nce" else 0.1
    m = sk.build_method(cfg, len(images))
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None)
    losses = [h["loss"] for h in hist]
    assert sum(losses[-3:]) / 3 < losses[0] - 1.0, losses
    bank0 = sk.init_memory_bank(n, 16, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(m.bank, bank0)
    assert torch.allclose(m.bank.norm(dim=1), torch.ones(len(images)), atol=1e-5)
    if loss == "nce":
        assert float(m.z) > 0 and all(h["nce_z"] == float(m.z) for h in hist)  # fixed after the first batch
    assert "proximal" in hist[-1]


def test_bank_knn_monitor_uses_the_bank():
    images = _images()
    labels = torch.arange(64) % 4
    cfg = _cfg()
    cfg.knn_every, cfg.knn_k = 1, 5
    m = sk.build_method(cfg, len(images))
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None, eval_data=(images, labels, images, labels))
    m.eval()
    with torch.no_grad():
        feats = m.embed(sk.to_float(images))
    assert hist[-1]["bank_knn_acc"] == sk.knn_accuracy(m.bank, labels, feats, labels, k=5, temperature=0.1)


def test_bank_from_features_holds_the_untrained_embeddings():
    images = _images()
    cfg = _cfg(bank_init="features")
    cfg.epochs = 1
    m = sk.build_method(cfg, len(images))
    assert not bool(m.bank_ready)
    ref = sk.build_method(cfg, len(images))
    with torch.no_grad():
        expected = torch.cat([ref.embed(sk.to_float(images[i:i + 256])) for i in range(0, 64, 256)])
    ctx = sk.EpochContext(images=images, epoch=0, device=torch.device("cpu"), cfg=cfg, num_samples=64)
    m.on_epoch_start(ctx)
    assert torch.allclose(m.bank, expected, atol=1e-6) and bool(m.bank_ready)
    bank = m.bank.clone()
    m.on_epoch_start(ctx)  # only once
    assert torch.equal(m.bank, bank)


def test_bad_config_is_refused():
    """Choices are the config's typed checks, ranges NPID's own: all through sk.validate."""
    with pytest.raises(sk.ConfigError, match="--params.loss=infonce: choose one of nce, softmax"):
        sk.validate(_cfg(loss="infonce"))
    with pytest.raises(sk.ConfigError, match="--params.bank_init=zeros: choose one of random, features"):
        sk.validate(_cfg(bank_init="zeros"))
    with pytest.raises(sk.ConfigError, match="momentum"):
        sk.validate(_cfg(bank_momentum=1.0))
    with pytest.raises(sk.ConfigError, match="temperature"):
        sk.validate(_cfg(temperature=0.0))


def _worker(rank, world, port, bank, idx, feats, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        b = bank.clone()
        sk.update_memory_bank(b, idx.chunk(world)[rank], feats.chunk(world)[rank], 0.5)
        out[rank] = b
    finally:
        dist.destroy_process_group()


def test_distributed_bank_update_equals_single_process():
    bank, feats, idx = _unit(20, 4, 0), _unit(6, 4, 1), torch.tensor([0, 3, 5, 9, 12, 19])
    single = sk.update_memory_bank(bank.clone(), idx, feats, 0.5)
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), bank, idx, feats, out), nprocs=2, join=True)
    assert torch.allclose(out[0], single, atol=1e-7) and torch.equal(out[0], out[1])
