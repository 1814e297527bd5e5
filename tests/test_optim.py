"""LARS against its rule written out by hand, against torch's SGD where the rule says they
agree, and the learning-rate schedule."""

import math

import pytest
import torch

import sslkit as sk
from sslkit.optim import LARS, lr_at, make_optimizer


def _reference_step(w, g, buf, lr, wd, mom, eta, clip, one_d):
    """One LARS step in float64, from the formula (You et al. 2017; solo-learn's variant)."""
    w, g = w.double(), g.double()
    if one_d:
        d = g
    else:
        wn, gn = w.norm().item(), g.norm().item()
        trust = eta * wn / (gn + wd * wn + 1e-8)
        if clip:
            trust = min(trust / lr, 1.0)
        d = trust * (g + wd * w)
    buf = d if buf is None else mom * buf + d
    return w - lr * buf, buf


@pytest.mark.parametrize("clip", [True, False])
def test_lars_matches_the_rule_for_weights_and_biases(clip):
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(6, 5, dtype=torch.float64))
    bias = torch.nn.Parameter(torch.randn(6, dtype=torch.float64))
    opt = LARS([weight, bias], lr=0.5, momentum=0.9, weight_decay=1e-3, eta=0.02, clip=clip)
    ref = {"w": (weight.detach().clone(), None), "b": (bias.detach().clone(), None)}
    for step in range(4):
        gw, gb = torch.randn(6, 5, dtype=torch.float64) * 10 ** step, torch.randn(6, dtype=torch.float64)
        weight.grad, bias.grad = gw.clone(), gb.clone()
        opt.step()
        ref["w"] = _reference_step(ref["w"][0], gw, ref["w"][1], 0.5, 1e-3, 0.9, 0.02, clip, one_d=False)
        ref["b"] = _reference_step(ref["b"][0], gb, ref["b"][1], 0.5, 1e-3, 0.9, 0.02, clip, one_d=True)
        assert torch.allclose(weight.detach(), ref["w"][0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(bias.detach(), ref["b"][0], rtol=1e-12, atol=1e-12)


def test_each_layer_moves_by_eta_times_its_norm():
    """Closed form: with clipping, no weight decay and no momentum, a step whose trust ratio
    is clipped moves every weight tensor by exactly eta * ||w||, whatever its gradient's scale."""
    torch.manual_seed(1)
    layers = [torch.nn.Parameter(torch.randn(8, 8, dtype=torch.float64) * s) for s in (0.1, 1.0, 30.0)]
    before = [p.detach().clone() for p in layers]
    opt = LARS(layers, lr=10.0, momentum=0.0, weight_decay=0.0, eta=0.01, clip=True)
    for p, s in zip(layers, (1e-2, 1.0, 1e3)):
        p.grad = torch.randn(8, 8, dtype=torch.float64) * s
    opt.step()
    for p, w0 in zip(layers, before):
        assert (p.detach() - w0).norm().item() == pytest.approx(0.01 * w0.norm().item(), rel=1e-5)


def test_clipped_lars_with_a_large_eta_is_sgd():
    """When eta ||w|| / ||g|| exceeds lr the clipped trust ratio is 1: torch's SGD, step for step."""
    torch.manual_seed(2)
    net_a = torch.nn.Sequential(torch.nn.Linear(5, 7, bias=False), torch.nn.Tanh(), torch.nn.Linear(7, 3, bias=False))
    net_b = torch.nn.Sequential(torch.nn.Linear(5, 7, bias=False), torch.nn.Tanh(), torch.nn.Linear(7, 3, bias=False))
    net_b.load_state_dict(net_a.state_dict())
    lars = LARS(net_a.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, eta=1e6, clip=True)
    sgd = torch.optim.SGD(net_b.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    for _ in range(5):
        x = torch.randn(16, 5)
        for net, opt in ((net_a, lars), (net_b, sgd)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_zero_weight_takes_a_plain_sgd_step():
    w = torch.nn.Parameter(torch.zeros(3, 3))
    w.grad = torch.ones(3, 3)
    LARS([w], lr=0.1, momentum=0.0, weight_decay=0.0, eta=0.02).step()
    assert torch.allclose(w.detach(), torch.full((3, 3), -0.1))


def test_make_optimizer_and_the_swav_presets():
    cfg = sk.TrainConfig(method="swav", optimizer="lars", lars_eta=0.05, lars_clip=False)
    opt = make_optimizer(cfg, [torch.nn.Parameter(torch.ones(2, 2))])
    assert isinstance(opt, LARS) and opt.defaults["eta"] == 0.05 and opt.defaults["clip"] is False
    preset = sk.apply_preset(sk.TrainConfig(method="swav"), "cifar10")
    assert preset.optimizer == "lars" and preset.lars_eta == 0.02 and preset.lr == 0.6
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        make_optimizer(sk.TrainConfig(optimizer="adam"), [torch.nn.Parameter(torch.ones(1))])


def test_learning_rate_scales_with_the_global_batch():
    cfg = sk.TrainConfig(lr=0.1, batch_size=64, epochs=10, warmup_epochs=0, schedule="constant")
    assert lr_at(cfg, 5, 10) == pytest.approx(0.1 * 64 / 256)
    assert lr_at(cfg, 5, 10, world_size=4) == pytest.approx(0.1)  # 4 processes x 64 = 256
    cfg.schedule = "cosine"
    assert lr_at(cfg, 50, 10, world_size=4) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
