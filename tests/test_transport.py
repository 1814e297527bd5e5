"""Sinkhorn-Knopp against references: textbook scaling in float64, the exact LP, SwAV's loop."""

import math
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import sslkit as sk
from conftest import free_port
from references import official_swav_loop, textbook_sinkhorn
from sslkit.transport import balanced_rounding, exact_transport, sela_labels, sinkhorn, swav_codes


def _scores(n=60, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(n, k, generator=g) * 2, dim=1)


_textbook_sinkhorn = textbook_sinkhorn


def test_marginals_and_textbook_reference():
    S = _scores()
    n, k = S.shape
    res = sinkhorn(S, lam=3.0, tol=1e-7, max_iters=5000)  # about the float32 floor
    assert res.converged and res.marginal_error < 1e-6
    assert torch.allclose(res.plan.sum(1), torch.full((n,), 1 / n), atol=1e-7)
    assert torch.allclose(res.plan.sum(0), torch.full((k,), 1 / k), atol=1e-6)
    ref = _textbook_sinkhorn(S.exp().numpy(), 3.0, np.full(n, 1 / n), np.full(k, 1 / k))
    assert np.allclose(res.plan.double().numpy(), ref, atol=1e-7)


def test_arbitrary_marginals():
    S = _scores(40, 4, seed=1)
    r = torch.rand(40) + 0.5
    r = r / r.sum()
    c = torch.tensor([0.1, 0.2, 0.3, 0.4])
    res = sinkhorn(S, lam=2.0, r=r, c=c, tol=1e-7, max_iters=5000)
    assert torch.allclose(res.plan.sum(1), r, atol=1e-7)
    assert torch.allclose(res.plan.sum(0), c, atol=1e-6)
    ref = _textbook_sinkhorn(S.exp().numpy(), 2.0, r.double().numpy(), c.double().numpy())
    assert np.allclose(res.plan.double().numpy(), ref, atol=1e-7)
    with pytest.raises(ValueError, match="equal mass"):
        sinkhorn(S, 2.0, r=r, c=c * 2)


def test_cost_approaches_exact_lp_as_lambda_grows():
    S = _scores(30, 3, seed=2)
    plan_lp, cost_lp = exact_transport(-S)
    assert torch.allclose(plan_lp.sum(1), torch.full((30,), 1 / 30, dtype=torch.float64), atol=1e-9)
    gaps = []
    for lam in (1, 5, 25, 100):
        res = sinkhorn(S, lam, tol=1e-7, max_iters=20000)
        gaps.append(float((res.plan.double() * -S.double()).sum()) - cost_lp)
    assert all(g >= -1e-6 for g in gaps)  # the LP is a lower bound
    assert all(a > b for a, b in zip(gaps, gaps[1:]))  # monotone approach
    assert gaps[-1] < 2e-3


def test_lp_solution_is_a_vertex_and_rounding_recovers_it():
    S = _scores(30, 3, seed=3)
    plan_lp, _ = exact_transport(-S)
    # with N divisible by K the LP optimum is a 0/1 assignment (scaled by 1/N)
    assert torch.allclose(plan_lp * 30, (plan_lp * 30).round(), atol=1e-7)
    labels = balanced_rounding(sinkhorn(S, 200.0, tol=1e-8, max_iters=20000).plan)
    assert torch.equal(labels, plan_lp.argmax(1))


def test_hard_labels_exactly_equipartitioned():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1000, 10, generator=g)
    logits[:, 0] += 5  # the network prefers cluster 0 for everyone
    assert torch.bincount(logits.argmax(1), minlength=10).max() > 900  # greedy argmax collapses
    labels, res = sela_labels(torch.log_softmax(logits, 1), lam=10.0, exact=True)
    assert torch.bincount(labels, minlength=10).tolist() == [100] * 10
    uneven = balanced_rounding(torch.rand(103, 10, generator=g))
    assert sorted(torch.bincount(uneven, minlength=10).tolist()) == [10] * 7 + [11] * 3


def test_sela_and_swav_forms_are_one_algorithm():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(50, 6, generator=g)
    lam = 4.0
    # SeLa: Q = diag(a) P^lam diag(b) with P = softmax(logits), in float64 NumPy
    P = torch.softmax(logits.double(), 1).numpy()
    q_sela = _textbook_sinkhorn(P, lam, np.full(50, 1 / 50), np.full(6, 1 / 6))
    # SwAV: exp(scores / eps) with eps = 1 / lam, on the raw scores (no softmax)
    q_swav = sinkhorn(logits, lam, tol=1e-7, max_iters=5000).plan
    assert np.allclose(q_swav.double().numpy(), q_sela, atol=1e-7)


_official_swav_loop = official_swav_loop


def test_swav_codes_match_the_published_loop():
    g = torch.Generator().manual_seed(5)
    z = torch.nn.functional.normalize(torch.randn(32, 16, generator=g), dim=1)
    protos = torch.nn.functional.normalize(torch.randn(20, 16, generator=g), dim=1)
    out = z @ protos.T
    codes = swav_codes(out, epsilon=0.05, iterations=3)
    assert torch.allclose(codes.double(), _official_swav_loop(out, 0.05, 3), atol=1e-5)
    assert torch.allclose(codes.sum(1), torch.ones(32), atol=1e-5)


def test_half_precision_and_huge_lambda_give_no_nan():
    S = _scores(200, 8, seed=6)
    for dtype in (torch.float16, torch.bfloat16):
        res = sinkhorn(S.to(dtype), lam=1000.0, max_iters=200, tol=1e-4)
        assert torch.isfinite(res.plan).all() and res.plan.dtype == torch.float32
        assert torch.allclose(res.plan.sum(1), torch.full((200,), 1 / 200), atol=1e-6)
    # naive scaling would overflow: exp(1000 * 5) is inf in float32
    res = sinkhorn(torch.randn(100, 4) * 5, lam=1000.0, max_iters=500, tol=1e-5)
    assert torch.isfinite(res.plan).all()


def test_reports_iterations_and_error():
    S = _scores()
    few = sinkhorn(S, 10.0, max_iters=2, tol=0.0)
    assert few.iterations == 2 and not few.converged and few.marginal_error > 0
    many = sinkhorn(S, 10.0, max_iters=10000, tol=1e-6)
    assert many.converged and many.iterations < 10000 and many.marginal_error < 1e-6


def _worker(rank, world, port, scores, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        part = scores.chunk(world)[rank]
        res = sinkhorn(part, 5.0, max_iters=50, tol=1e-8)
        out[rank] = (res.plan, res.iterations, res.marginal_error)
    finally:
        dist.destroy_process_group()


def test_distributed_equals_single_process():
    scores = _scores(64, 6, seed=7)
    single = sinkhorn(scores, 5.0, max_iters=50, tol=1e-8)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, free_port(), scores, out), nprocs=2, join=True)
    plan = torch.cat([out[0][0], out[1][0]])
    assert torch.allclose(plan, single.plan, atol=1e-7)
    assert out[0][1] == out[1][1] == single.iterations


def test_fast_path_equals_log_domain_and_fallback_keeps_marginals():
    from sslkit.transport import _sinkhorn_log

    S = _scores(80, 7, seed=8)
    lam = 10.0
    fast = sinkhorn(S, lam, max_iters=40, tol=0.0)
    n, k = S.shape
    log_k = S.float() * lam
    u, v, done, _ = _sinkhorn_log(log_k, torch.full((n,), -math.log(n)), torch.full((k,), -math.log(k)),
                                  torch.zeros(n), torch.zeros(k), 40, 0.0, 0)
    assert done == fast.iterations == 40
    assert torch.allclose(fast.plan, torch.exp(log_k + u[:, None] + v[None, :]), atol=1e-7)
    # scores spread over thousands of nats: the kernel underflows, the log domain finishes the job
    wide = torch.randn(200, 6, generator=torch.Generator().manual_seed(9)) * 50
    res = sinkhorn(wide, lam=2.0, max_iters=3000, tol=1e-5)  # log-kernel spread of hundreds of nats
    assert torch.isfinite(res.plan).all() and res.converged
    assert torch.allclose(res.plan.sum(0), torch.full((6,), 1 / 6), atol=1e-5)


def test_tiny_kernel_entries_do_not_change_the_plan():
    """Kernel entries below 1e-30 of their row's largest are dropped for speed (subnormal floats):
    the plan still equals the float64 textbook scaling where most entries are that small."""
    S = _scores(80, 6, seed=7)
    lam = 20.0  # exp(lam * (log p - max log p)) reaches ~1e-100 here
    ratio = torch.exp(lam * (S - S.max(1, keepdim=True).values))
    assert (ratio < 1e-30).float().mean() > 0.2
    n, k = S.shape
    res = sinkhorn(S, lam, tol=1e-7, max_iters=20000)
    ref = _textbook_sinkhorn(S.double().exp().numpy(), lam, np.full(n, 1 / n), np.full(k, 1 / k), iters=20000)
    assert np.allclose(res.plan.double().numpy(), ref, atol=1e-7)


def test_check_every_keeps_the_plan():
    S = _scores(200, 7, seed=8)
    n, k = S.shape
    ref = _textbook_sinkhorn(S.exp().numpy(), 4.0, np.full(n, 1 / n), np.full(k, 1 / k))
    res = sinkhorn(S, 4.0, tol=1e-6, max_iters=5000, check_every=10)
    assert res.iterations % 10 == 0 and res.marginal_error < 1e-6
    assert np.allclose(res.plan.double().numpy(), ref, atol=1e-7)


@pytest.mark.parametrize("case, match", [
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("empty", "empty"), ("lam0", "lam must be"),
    ("lamneg", "lam must be"), ("r_neg", "strictly positive"), ("c_zero", "strictly positive"),
    ("r_shape", "shape"), ("1d", "2-D"),
])
def test_invalid_input_raises_a_clear_error(case, match):
    S = _scores(20, 4, seed=9)
    r = torch.full((20,), 1 / 20)
    c = torch.full((4,), 1 / 4)
    args = {"nan": (S.masked_fill(torch.eye(20, 4, dtype=torch.bool), float("nan")), 5.0),
            "inf": (S.masked_fill(torch.eye(20, 4, dtype=torch.bool), -float("inf")), 5.0),
            "empty": (torch.zeros(0, 4), 5.0), "lam0": (S, 0.0), "lamneg": (S, -2.0),
            "r_neg": (S, 5.0, torch.cat([r[:-2], torch.tensor([-0.05, 0.15])])),
            "c_zero": (S, 5.0, None, torch.tensor([0.5, 0.5, 0.0, 0.0])),
            "r_shape": (S, 5.0, r[:10]), "1d": (S[0], 5.0)}[case]
    with pytest.raises(ValueError, match=match):
        sinkhorn(*args)
