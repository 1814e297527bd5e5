"""SwAV: codes, swapped-prediction loss, prototypes, queue, distributed codes, errors."""

import math
import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import sslkit as sk
from references import official_swav_loop
from conftest import free_port
from sslkit.engine import collapse_warning
from sslkit.methods.swav import swapped_prediction_loss


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)


def _cfg(batch=32, **kw):
    cfg = sk.TrainConfig(method="swav", epochs=2, batch_size=batch, lr=0.05, knn_every=0, device="cpu",
                         weight_decay=1e-6)
    args = dict(proj_hidden=32, proj_dim=16, num_prototypes=8, freeze_prototypes_steps=0)
    args.update(kw)
    cfg.params = sk.METHODS["swav"].Params(**args)
    return cfg


def test_codes_equipartition_the_batch():
    cfg = _cfg(sinkhorn_iters=200)
    m = sk.build_method(cfg, 64)
    z = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    q = m.codes(m.prototype_scores(z), 0, z)
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-5)  # soft codes, one unit per image
    assert torch.allclose(q.sum(0), torch.full((8,), 64 / 8), atol=1e-3)  # every prototype B/K images
    assert (q > 0).all() and (q < 1).all()  # soft, not rounded
    # the paper's 3 iterations: rows exact, columns close to equal
    m.params.sinkhorn_iters = 3
    q3 = m.codes(m.prototype_scores(z), 0, z)
    assert torch.allclose(q3.sum(1), torch.ones(64), atol=1e-5)
    assert (q3.sum(0) - 8).abs().max() < (torch.softmax(m.prototype_scores(z) / 0.05, 1).sum(0) - 8).abs().max()


def _official_codes(scores, eps=0.05, iters=3):
    """The SwAV paper's Sinkhorn (Algorithm 1 / the official distributed_sinkhorn), on one process."""
    q = torch.exp(scores / eps).t()  # K x B
    q /= q.sum()
    k, b = q.shape
    for _ in range(iters):
        q /= q.sum(1, keepdim=True)
        q /= k
        q /= q.sum(0, keepdim=True)
        q /= b
    return (q * b).t()


def test_hard_codes_are_the_one_hot_argmax_of_the_soft_codes():
    z = torch.nn.functional.normalize(torch.randn(64, 16, generator=torch.Generator().manual_seed(3)), dim=1)
    soft_m = sk.build_method(_cfg(), 64)
    hard_m = sk.build_method(_cfg(hard_codes=True), 64)
    hard_m.load_state_dict(soft_m.state_dict())
    scores = soft_m.prototype_scores(z)
    soft = soft_m.codes(scores, 0, z)
    assert torch.allclose(soft, _official_codes(scores.detach().double()).float(), atol=1e-5)
    hard = hard_m.codes(scores, 0, z)
    assert set(hard.unique().tolist()) == {0.0, 1.0} and torch.equal(hard.sum(1), torch.ones(64))
    assert torch.equal(hard.argmax(1), _official_codes(scores.detach().double()).argmax(1))
    cfg = sk.TrainConfig(method="swav")
    sk.set_value(cfg, "params.hard_codes", "true")  # the command line's --params.hard_codes=true
    assert cfg.params.hard_codes is True


def test_loss_equals_hand_written_formula():
    g = torch.Generator().manual_seed(1)
    scores = [torch.randn(3, 4, generator=g) for _ in range(3)]  # 2 full crops + 1 small crop
    codes = [torch.softmax(torch.randn(3, 4, generator=g), 1) for _ in range(2)]
    tau = 0.5
    total = 0.0
    for i in range(2):
        sub = 0.0
        for v in range(3):
            if v == i:
                continue
            for b in range(3):
                logz = math.log(sum(math.exp(scores[v][b, k].item() / tau) for k in range(4)))
                sub += -sum(codes[i][b, k].item() * (scores[v][b, k].item() / tau - logz) for k in range(4)) / 3
        total += sub / 2
    assert swapped_prediction_loss(scores, codes, tau).item() == pytest.approx(total / 2, rel=1e-5)


def test_prototypes_unit_norm_and_frozen_at_first():
    images = _images()
    cfg = _cfg(freeze_prototypes_steps=2)
    m = sk.build_method(cfg, len(images))
    m.prototypes.weight.data.mul_(3.0)
    m.normalize_prototypes()
    w0 = m.prototypes.weight.detach().clone()
    cfg.epochs = 1  # 2 steps, all frozen
    sk.fit(m, images, cfg, torch.device("cpu"), log=None)
    assert (m.prototypes.weight - w0).abs().max() < 1e-6  # only re-normalisation round-off
    assert int(m.steps_done) == 2
    sk.fit(m, images, cfg, torch.device("cpu"), log=None)  # 2 more steps, now learning
    assert (m.prototypes.weight - w0).abs().max() > 1e-3
    assert torch.allclose(m.prototypes.weight.norm(dim=1), torch.ones(8), atol=1e-6)


def test_queue_changes_codes_but_not_the_batch():
    cfg = _cfg(queue_length=64, queue_start_epoch=0)
    m = sk.build_method(cfg, 64)
    m.epoch = 0
    z_old = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    for i in range(2):  # fill the queue with two batches per crop
        for crop in range(2):
            m.codes(m.prototype_scores(z_old[32 * i:32 * i + 32]), crop, z_old[32 * i:32 * i + 32])
    assert int(m.queue_filled) == 64
    z = torch.nn.functional.normalize(torch.randn(32, 16), dim=1)
    with_queue = m.codes(m.prototype_scores(z), 0, z)
    assert with_queue.shape == (32, 8)  # only the current batch's codes come back
    assert torch.equal(m.queue[0][:32], z)  # ... and the batch entered the queue
    plain = official_swav_loop(m.prototype_scores(z).detach(), 0.05, 3).float()
    assert not torch.allclose(with_queue, plain, atol=1e-3)
    # the reference: SwAV's published loop over [queue; batch], last rows kept
    # before the update the queue held batch 2, then batch 1
    ref_scores = torch.cat([torch.cat([z_old[32:], z_old[:32]]) @ m.prototypes.weight.t(), z @ m.prototypes.weight.t()])
    ref = official_swav_loop(ref_scores.detach(), 0.05, 3)[-32:].float()
    assert torch.allclose(with_queue, ref, atol=1e-5)


def _worker(rank, world, port, z, weight, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = _cfg()
        m = sk.build_method(cfg, 64)
        m.prototypes.weight.data.copy_(weight)
        part = z.chunk(world)[rank]
        out[rank] = m.codes(m.prototype_scores(part), 0, part).clone()
    finally:
        dist.destroy_process_group()


def test_distributed_codes_equal_single_process_codes():
    cfg = _cfg()
    m = sk.build_method(cfg, 64)
    z = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    single = m.codes(m.prototype_scores(z), 0, z)
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), z, m.prototypes.weight.detach().clone(), out), nprocs=2, join=True)
    assert torch.allclose(torch.cat([out[0], out[1]]), single, atol=1e-6)


def _pattern_images(n=64, patterns=4, seed=0):
    """Noisy copies of a few random patterns: a data set with clusters SwAV can find."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(patterns, 3, 32, 32, generator=g)
    x = base[torch.arange(n) % patterns] + 0.15 * torch.randn(n, 3, 32, 32, generator=g)
    return (x.clamp(0, 1) * 255).to(torch.uint8)


def test_a_few_steps_reduce_the_loss():
    images = _pattern_images(32)
    # mild views, so the four patterns stay distinguishable after augmentation
    cfg = _cfg(batch=32, num_prototypes=16, temperature=0.1, jitter_strength=0.0, gray_p=0.0, global_scale_min=0.8)
    cfg.epochs, cfg.lr, cfg.schedule = 25, 0.2, "constant"
    m = sk.build_method(cfg, len(images))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None)
    first = sum(h["loss_over_lnK"] for h in hist[:3]) / 3
    last = sum(h["loss_over_lnK"] for h in hist[-3:]) / 3
    assert last < first - 0.3 and last < 0.9, (first, last)  # well below ln K: not the uniform-code collapse
    # the collapse monitor's record: prototype usage of the last epoch, and how much it moved since the one before
    assert "nmi_prev" not in hist[1] and 0 <= hist[-1]["nmi_prev"] <= 1
    assert sum(hist[-1]["cluster_usage_hist"]) == 16 and hist[-1]["used_clusters"] <= 16


def test_batch_smaller_than_prototypes_without_queue_is_an_error():
    cfg = _cfg(batch=32, num_prototypes=100)
    with pytest.raises(sk.ConfigError, match="queue_length"):
        sk.METHODS["swav"].check_config(cfg)
    m = sk.build_method(cfg, 64)
    with pytest.raises(sk.ConfigError, match="prototypes"):
        sk.fit(m, _images(), cfg, torch.device("cpu"), log=None)
    cfg.params.queue_length = 96  # 32 + 96 >= 100: fine
    sk.METHODS["swav"].check_config(cfg)


def test_cli_refuses_small_batch_before_any_work(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "sslkit.train", "--method=swav", "--batch_size=64",
                        f"--output_dir={out}"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "queue_length" in r.stderr and "prototypes" in r.stderr
    assert not out.exists()


def test_loss_stuck_at_ln_k_warns():
    swav = sk.METHODS["swav"]
    assert collapse_warning({"epoch": 3, "loss_over_lnK": 0.995, "code_entropy": 0.99}, swav) is not None
    assert collapse_warning({"epoch": 3, "loss_over_lnK": 0.995, "code_entropy": 0.99}) is None  # not SwAV's record
    assert collapse_warning({"epoch": 3, "loss_over_lnK": 0.8, "code_entropy": 0.99}, swav) is None
    assert collapse_warning({"epoch": 3, "loss_over_lnK": 1.5, "code_entropy": 0.6}, swav) is None  # sharp codes
    # reproduce it: a huge epsilon makes the codes uniform, so the loss cannot go below ln K
    images = _images()
    cfg = _cfg(epsilon=100.0)
    cfg.epochs = 3
    m = sk.build_method(cfg, len(images))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None)
    assert hist[-1]["code_entropy"] > 0.99
    assert any("ln K" in str(w.message) for w in caught)
