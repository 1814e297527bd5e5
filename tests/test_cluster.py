import itertools
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import labdata
import sslkit as sk
from conftest import free_port
from sslkit.cluster import fit_pca, kmeans, uniform_cluster_sampler


def test_kmeans_recovers_well_separated_blobs():
    x, y = labdata.make_blobs(n=1000, k=5, dim=10, std=0.3, spread=8.0, seed=0)
    res = kmeans(x, 5, iters=50, restarts=2)
    assert sk.ari(res.labels, y) == pytest.approx(1.0)


def test_inertia_never_increases():
    x, _ = labdata.make_blobs(n=2000, k=20, dim=8, std=1.5, spread=3.0, seed=1)
    res = kmeans(x, 20, iters=40, tol=0.0, init="random")
    h = res.history
    assert len(h) >= 10
    assert all(b <= a * (1 + 1e-6) for a, b in zip(h, h[1:])), h


def test_empty_clusters_are_reseeded():
    x, _ = labdata.make_blobs(n=600, k=3, dim=2, std=0.3, seed=2)
    start = torch.cat([x[:3], torch.full((3, 2), 1000.0)])  # three centroids far from every point
    res = kmeans(x, 6, iters=30, init=start)
    assert res.empty_reseeded >= 3
    assert torch.bincount(res.labels, minlength=6).min() > 0
    off = kmeans(x, 6, iters=30, init=start, reseed_empty=False)
    assert torch.bincount(off.labels, minlength=6).min() == 0  # without the safeguard they stay empty


def _brute_force_inertia(x, k):
    best = float("inf")
    for assignment in itertools.product(range(k), repeat=len(x)):
        a = torch.tensor(assignment)
        if len(torch.unique(a)) < k:
            continue
        total = sum(((x[a == j] - x[a == j].mean(0)) ** 2).sum().item() for j in range(k))
        best = min(best, total)
    return best


def test_matches_brute_force_on_a_tiny_problem():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 2, generator=g)
    best = _brute_force_inertia(x, 3)
    res = kmeans(x, 3, iters=100, restarts=20, tol=0.0)
    assert res.inertia == pytest.approx(best, rel=1e-5)


@pytest.mark.parametrize("k", [7, 45])  # fewer centroids than 2D (addmm with a bias), or more ([x, 1] products)
def test_assignment_is_the_nearest_centroid_by_brute_force(k):
    from sslkit.cluster import assign
    g = torch.Generator().manual_seed(8)
    x = torch.randn(103, 40, generator=g)[:, ::2]  # not contiguous; 103 rows, blocks of 10
    c = torch.randn(k, 20, generator=g)
    d = torch.cdist(x.double(), c.double()) ** 2
    for chunk in (10, 103, None):
        labels, d2 = assign(x, c, chunk)
        assert torch.equal(labels, d.argmin(1)) and torch.allclose(d2.double(), d.min(1).values, atol=1e-4)
    labels, d2 = assign(x[:0], c)
    assert labels.shape == (0,) and d2.shape == (0,)


@pytest.mark.parametrize("dim", [6, 3])  # 8 centroids: fewer than 2D, or more
@pytest.mark.parametrize("moved", ["few", "most"])
def test_assignment_from_previous_labels_is_a_nearest_centroid_by_brute_force(moved, dim):
    """With the previous labels, a row keeps its label when that centroid is still nearest
    (an exact tie included) and otherwise gets the brute-force nearest centroid; both of the
    code paths (a few rows move: only they are searched; most move: the whole block is)."""
    from sslkit.cluster import assign
    g = torch.Generator().manual_seed(9)
    x = torch.randint(-4, 5, (103, dim), generator=g).float()  # small integers: exact distances
    c = torch.randint(-4, 5, (7, dim), generator=g).float()
    c = torch.cat([c, c[2:3]])  # centroid 7 is centroid 2: an exact tie for their rows
    d = torch.cdist(x.double(), c.double()) ** 2
    nearest = d.argmin(1)
    if moved == "few":
        prev = torch.where(nearest == 2, 7, nearest)  # the tied rows hold the higher index
        prev[::9] = (prev[::9] + 1) % 8  # and a few rows have moved
    else:
        prev = torch.randint(8, (103,), generator=g)
    for chunk in (10, 103, None):
        labels, d2 = assign(x, c, chunk, prev=prev)
        assert torch.equal(d.gather(1, labels[:, None]).squeeze(1), d.min(1).values)  # a nearest centroid
        assert torch.allclose(d2.double(), d.min(1).values, atol=1e-4)
        still = d.gather(1, prev[:, None]).squeeze(1) == d.min(1).values
        assert torch.equal(labels[still], prev[still])  # kept where still nearest, ties included
        assert torch.equal(labels[~still], nearest[~still])
    assert bool((prev == 7).any())  # the tie is exercised


def test_seeding_from_a_sample_is_as_good_as_from_all_rows():
    """k-means|| from a sample of 32 rows per cluster, against seeding from every row: final
    inertia within 0.2 % on average over 8 seeds (blobs of the benchmark's kind, 40 clusters;
    seed to seed the inertia varies by about 0.5 %)."""
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(10, 16, generator=g) * 3
    x = centres[torch.randint(10, (6000,), generator=g)] + torch.randn(6000, 16, generator=g)
    sampled = [kmeans(x, 40, iters=20, tol=0.0, seed=s).inertia for s in range(8)]
    full = [kmeans(x, 40, iters=20, tol=0.0, seed=s, init_sample=None).inertia for s in range(8)]
    assert sum(sampled) <= 1.002 * sum(full)
    with pytest.raises(ValueError, match="init_sample must be a positive integer"):
        kmeans(x, 4, init_sample=0)


def test_centroids_are_the_means_of_their_clusters_after_incremental_updates(monkeypatch):
    """After the first iterations only the rows that moved update the cluster sums; when the
    run converges, every centroid must still be the (float64) mean of its points."""
    import sslkit.cluster as cluster
    x, _ = labdata.make_blobs(n=3000, k=30, dim=8, std=1.5, spread=3.0, seed=11)
    rows_summed = []  # rows given to each sum: all 3000 for a recomputation, fewer for an update
    real = cluster._cluster_sums
    monkeypatch.setattr(cluster, "_cluster_sums", lambda xs, *a, **kw: rows_summed.append(len(xs)) or real(xs, *a, **kw))
    res = kmeans(x, 30, iters=100, tol=0.0, seed=2)
    assert res.iterations < 100 and len(res.history) > 5  # converged, after many small moves
    assert rows_summed.count(3000) == 1 and len(rows_summed) >= 2 * 4  # one full sum, then updates
    assert 0 < max(r for r in rows_summed if r < 3000) < 1500
    x64 = x.double()
    counts = torch.bincount(res.labels, minlength=30)
    means = torch.zeros(30, 8, dtype=torch.float64).index_add_(0, res.labels, x64) / counts[:, None]
    assert bool((counts > 0).all())
    assert torch.allclose(res.centroids.double(), means, rtol=0, atol=1e-6)
    by_hand = ((x64 - means[res.labels]) ** 2).sum()
    assert res.inertia == pytest.approx(float(by_hand), rel=1e-6)


def test_chunked_assignment_equals_full():
    x, _ = labdata.make_blobs(n=500, k=4, dim=6, seed=4)
    a = kmeans(x, 4, iters=10, chunk_size=37, seed=1)
    b = kmeans(x, 4, iters=10, chunk_size=10_000, seed=1)
    assert torch.equal(a.labels, b.labels) and torch.allclose(a.centroids, b.centroids, atol=1e-5)


def test_pca_whitening_gives_identity_covariance():
    g = torch.Generator().manual_seed(5)
    mix = torch.randn(12, 12, generator=g)
    x = torch.randn(4000, 12, generator=g) @ mix + 3.0
    pca = fit_pca(x, 6)
    y = pca.transform(x, l2=False)
    cov = (y - y.mean(0)).T @ (y - y.mean(0)) / len(y)
    assert torch.allclose(cov, torch.eye(6), atol=1e-3)
    assert (pca.variances[:-1] >= pca.variances[1:]).all()
    assert torch.allclose(pca.transform(x).norm(dim=1), torch.ones(len(x)), atol=1e-5)


def test_uniform_sampler_balances_clusters():
    labels = torch.cat([torch.zeros(900), torch.ones(90), torch.full((10,), 2)]).long()
    idx = uniform_cluster_sampler(labels, 999, torch.Generator().manual_seed(0))
    assert len(idx) == 999
    counts = torch.bincount(labels[idx], minlength=3)
    assert (counts - 333).abs().max() <= 1


def _seeds(x, k, init):
    """The seeding alone: the centroids k-means starts from."""
    from sslkit.cluster import _init
    return _init(x, k, init, torch.Generator().manual_seed(3), None)


def _worker(rank, world, port, x, splits, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mine = x.split(splits)[rank]
        res = kmeans(mine, 6, iters=15, seed=3, init="kmeans++")
        pca = fit_pca(mine, min(3, x.shape[1]))  # a collective: every process calls it, rows or not
        par = kmeans(mine, 6, iters=15, seed=3)  # the default, k-means||
        out[rank] = (res.centroids, res.labels, res.inertia, pca.components, par.centroids,
                     par.labels, _seeds(mine, 6, "kmeans++"), _seeds(mine, 6, "kmeans||"))
    finally:
        dist.destroy_process_group()


def _spawn(x, splits):
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), x, splits, out), nprocs=2, join=True)
    return out


def test_distributed_equals_single_process():
    x, _ = labdata.make_blobs(n=400, k=6, dim=5, std=1.0, seed=6)
    single = kmeans(x, 6, iters=15, seed=3, init="kmeans++")
    par = kmeans(x, 6, iters=15, seed=3)
    for splits in ([200, 200], [130, 270]):
        out = _spawn(x, splits)
        for rank in (0, 1):  # the seedings themselves, then the runs
            assert torch.equal(out[rank][6], _seeds(x, 6, "kmeans++"))
            assert torch.allclose(out[rank][7], _seeds(x, 6, "kmeans||"), atol=1e-6)
        assert torch.allclose(out[0][0], single.centroids, atol=1e-5)
        assert torch.equal(torch.cat([out[0][1], out[1][1]]), single.labels)
        assert out[0][2] == pytest.approx(single.inertia, rel=1e-6)
        assert torch.allclose(out[0][4], par.centroids, atol=1e-5) and torch.allclose(out[1][4], par.centroids, atol=1e-5)
        assert torch.equal(torch.cat([out[0][5], out[1][5]]), par.labels)
    comp = fit_pca(x, 3).components
    assert torch.allclose(out[0][3].abs(), comp.abs(), atol=1e-4)


def test_a_process_without_rows_never_draws_a_centroid():
    """Four distinct points, six centroids: once every point is a centroid the D^2 mass is 0.
    A process holding no rows must not be chosen to draw then (it would hand out a zero row)."""
    x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]]).repeat_interleave(5, 0)
    out = _spawn(x, [0, 20])
    for rank in (0, 1):
        for i, init in ((6, "kmeans++"), (7, "kmeans||")):
            seeds = out[rank][i]
            assert all((seeds[j] == x).all(1).any() for j in range(6)), f"{init}: a centroid that is no data point"
            assert torch.equal(seeds, _seeds(x, 6, init))


def _textbook_kmeanspp(x, k, g):
    """D^2 sampling, every point against every new centroid (the same random draws as sslkit's)."""
    first = torch.randint(len(x), (1,), generator=g)
    cents = [x[first[0]]]
    d2 = ((x - cents[0]) ** 2).sum(1)
    for _ in range(1, k):
        u = torch.rand(1, generator=g, dtype=torch.float64).item() * float(d2.double().sum())
        idx = int(torch.searchsorted(d2.double().cumsum(0), torch.tensor([u], dtype=torch.float64)).clamp(max=len(x) - 1))
        cents.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(cents)


@pytest.mark.parametrize("kind", ["blobs", "gaussian"])
def test_accelerated_kmeanspp_draws_the_textbook_centroids(kind):
    # small integers: every distance is exact in float32, in either formula
    g = torch.Generator().manual_seed(11)
    if kind == "blobs":  # the triangle-inequality pruning skips most points
        centres = torch.randint(-40, 40, (12, 6), generator=g).float()
        x = centres[torch.randint(12, (3000,), generator=g)] + torch.randint(-2, 3, (3000, 6), generator=g).float()
    else:  # pruning rarely applies: the full passes
        x = torch.randint(-5, 6, (2000, 16), generator=g).float()
    from sslkit.cluster import _kmeanspp
    ours = _kmeanspp(x, 40, torch.Generator().manual_seed(5), None)
    ref = _textbook_kmeanspp(x, 40, torch.Generator().manual_seed(5))
    assert torch.equal(ours, ref)


def _weighted_textbook_kmeanspp(x, w, k, g):
    """D^2 sampling with probabilities proportional to w * D^2 (k-means||'s reclustering)."""
    first = torch.multinomial(w.double(), 1, generator=g)
    cents = [x[first[0]]]
    d2 = ((x - cents[0]) ** 2).sum(1)
    for _ in range(1, k):
        mass = d2.double() * w.double()
        u = torch.rand(1, generator=g, dtype=torch.float64).item() * float(mass.sum())
        idx = int(torch.searchsorted(mass.cumsum(0), torch.tensor([u], dtype=torch.float64)).clamp(max=len(x) - 1))
        cents.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(cents)


def test_weighted_kmeanspp_draws_the_textbook_centroids():
    g = torch.Generator().manual_seed(12)
    x = torch.randint(-6, 7, (1500, 8), generator=g).float()
    w = torch.randint(0, 5, (1500,), generator=g).double()
    from sslkit.cluster import _kmeanspp_local
    ours = _kmeanspp_local(x, 30, torch.Generator().manual_seed(2), weights=w)
    assert torch.equal(ours, _weighted_textbook_kmeanspp(x, w, 30, torch.Generator().manual_seed(2)))


def test_kmeans_parallel_seeding_is_as_good_as_kmeanspp():
    """k-means|| (Bahmani et al. 2012), sslkit's default seeding, seeds at least as well as
    k-means++ with one draw per centroid (Arthur and Vassilvitskii's rule; the reference is
    scikit-learn's ``kmeans_plusplus`` with ``n_local_trials=1``), on average over seeds, and
    much better than random points; after Lloyd's iterations it is not worse either."""
    sklearn = pytest.importorskip("sklearn.cluster")
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(40, 16, generator=g) * 4
    x = centres[torch.randint(40, (8000,), generator=g)] + torch.randn(8000, 16, generator=g)
    seeds = range(6)
    ours = [kmeans(x, 40, iters=1, tol=0.0, init="kmeans||", seed=s).history[0] for s in seeds]
    rand = [kmeans(x, 40, iters=1, tol=0.0, init="random", seed=s).history[0] for s in seeds]
    ref = []
    for s in seeds:  # the inertia of scikit-learn's seeding alone
        c = sklearn.kmeans_plusplus(x.numpy(), 40, random_state=s, n_local_trials=1)[0]
        ref.append(float((torch.cdist(x, torch.from_numpy(c)) ** 2).min(1).values.sum()))
    assert sum(ours) <= 1.05 * sum(ref) and sum(ours) < 0.8 * sum(rand)
    final = [kmeans(x, 40, iters=30, seed=s).inertia for s in seeds]
    final_pp = [kmeans(x, 40, iters=30, seed=s, init="kmeans++").inertia for s in seeds]
    assert sum(final) <= 1.05 * sum(final_pp)


def test_invalid_input_raises_a_clear_error():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        kmeans(x, 0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        kmeans(x, -2)
    with pytest.raises(ValueError, match="need at least 11 points, got N=10"):
        kmeans(x, 11)
    with pytest.raises(ValueError, match="need at least 11 points"):
        kmeans(x, 11, init="random")
    with pytest.raises(ValueError, match="NaN or infinite features in 1 rows"):
        kmeans(torch.cat([x, torch.tensor([[0.0, float("nan"), 1.0]])]), 3)
    with pytest.raises(ValueError, match="no data"):
        kmeans(torch.empty(0, 3), 1)
    with pytest.raises(ValueError, match="2-D"):
        kmeans(torch.randn(10), 2)
    with pytest.raises(ValueError, match="shape"):
        kmeans(x, 2, init=torch.randn(3, 3))
    with pytest.raises(ValueError, match="dim must be an integer between 1 and the feature dimension D=3"):
        fit_pca(x, 4)
    with pytest.raises(ValueError, match="dim must be"):
        fit_pca(x, 0)
