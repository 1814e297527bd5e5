"""k-means (DeepCluster's clustering; PCA-whitening and the uniform sampler are in ``sslkit.whitening``).

Everything runs on the device of its input and works unchanged inside ``torch.distributed``:
each process holds some rows, sums are all-reduced, and random choices are drawn from a
generator seeded identically on every process, so the result equals one process's
result on the concatenated rows.

k-means (Lloyd's algorithm):
* initialisation by k-means|| (the default: a few rounds of D^2 oversampling, each one blocked
  matrix product, then weighted k-means++ on the candidates; Bahmani et al., VLDB 2012), by
  k-means++ (D^2 sampling, k sequential passes) or by uniformly random points;
* k-means|| seeds from a uniform sample of at most ``init_sample`` (32) rows per cluster: its
  inertia after Lloyd's iterations is within a few hundredths of a percent of seeding from
  every row (faiss trains on at most 256 rows per cluster);
* distances in chunks of rows, ``||x||^2 - 2 x.c + ||c||^2``, so N x K never has to fit in
  memory at once; from the second iteration on, a row keeps its label when that centroid is
  still at the minimum distance, so only the rows that move search for the arg-min, and
  the cluster sums (kept in float64) are updated by the rows that moved, not recomputed;
* an empty cluster is re-seeded by splitting a large one: it takes a slightly perturbed
  copy of the centroid of a cluster chosen with probability proportional to its size
  (as faiss does), and the two centroids move apart symmetrically;
* stops when no point changes cluster, when the relative decrease of the inertia falls
  below ``tol``, or after ``iters`` iterations; ``restarts`` runs keep the lowest inertia.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch

from . import dist


SEED_SAMPLE_PER_CLUSTER = 32  # k-means|| seeds from a uniform sample of at most this many rows per cluster


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # (K, D)
    labels: torch.Tensor  # (N,) this process's rows
    inertia: float  # sum of squared distances to the assigned centroids (all processes)
    iterations: int
    history: list = field(default_factory=list)  # inertia after each assignment step
    empty_reseeded: int = 0


def _global_offsets(n: int, device) -> tuple[int, int]:
    """(first global row index of this process, total rows)."""
    sizes = dist.all_gather_cat(torch.tensor([n], device=device))
    start = int(sizes[: dist.rank()].sum()) if dist.is_distributed() else 0
    return start, int(sizes.sum())


def _pick_rows(x: torch.Tensor, global_idx: torch.Tensor, start: int) -> torch.Tensor:
    """Rows with the given global indices, assembled on every process (all-reduce of owned rows)."""
    out = torch.zeros(len(global_idx), x.shape[1], device=x.device, dtype=x.dtype)
    local = global_idx - start
    own = (local >= 0) & (local < len(x))
    out[own] = x[local[own]]
    return dist.all_reduce_sum(out)


def _default_chunk(x: torch.Tensor, k: int) -> int:
    """Rows per distance block: on a CPU about 1M distances (4 MiB, so the GEMM's output is
    still in cache when the arg-min reads it) and at least 512 rows (so the GEMM keeps its
    rate); 65536 rows on an accelerator."""
    if x.device.type != "cpu":
        return 65536
    return int(min(4096, max(512, (1 << 20) // max(k, 1))))


@torch.no_grad()
def assign(x: torch.Tensor, centroids: torch.Tensor, chunk_size: int | None = None,
           x_sq: torch.Tensor | None = None, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of every row and the squared distance to it, computed in chunks.

    ``chunk_size`` rows at a time (default: about 10^6 distances per block on a CPU, where a
    cache-sized block is fastest, 65536 rows on an accelerator). ``x_sq``: the rows' squared
    norms, when the caller has them (k-means computes them once, not every iteration).

    ``prev``: each row's label from the previous iteration. A row keeps it when that centroid
    is still at the minimum distance (on an exact tie, the previous label, not the lowest
    index); only the other rows search for the arg-min. On a CPU the minimum alone is a
    reduction about four times cheaper than minimum-with-index, and after the first
    iterations few rows move.
    """
    chunk_size = chunk_size or _default_chunk(x, len(centroids))
    (n, d), k = x.shape, len(centroids)
    rows = min(chunk_size, n)
    c_sq = (centroids * centroids).sum(1)
    # ||c||^2 - 2 x.c; ||x||^2 is the same for every centroid, so it is added to the minimum only.
    # On a CPU, addmm's bias costs one more pass over each rows x K block; with many centroids
    # (K >= 2D, measured) it is cheaper to copy each block into [x, 1] and take one product
    # with [-2c, ||c||^2]. On an accelerator the extra pass is cheap (and cuBLAS can fuse a
    # 1-D bias into the product).
    cpu = x.device.type == "cpu"
    augment = cpu and k >= 2 * d
    # With fewer centroids and previous labels, the block is computed transposed, K x rows:
    # with K ~ 100 the product is faster with the long dimension last (1.2x measured at
    # 4096 x 256 -> 100), and so is the value-only minimum down the columns; the minimum with
    # its index is faster along rows, so a call without ``prev`` keeps rows x K.
    transposed = cpu and not augment and prev is not None
    if augment:
        c_aug = torch.cat([centroids * -2.0, c_sq[:, None]], 1).T.contiguous()
        x_aug = torch.empty(rows, d + 1, dtype=x.dtype, device=x.device)  # one block of [x, 1]
        x_aug[:, d] = 1
    elif not transposed:
        c_t = centroids.T.contiguous()  # the layout the product reads fastest
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    d2 = torch.empty(n, dtype=x.dtype, device=x.device)
    # one block buffer, reused: a fresh N x K allocation per block costs more than its product on a CPU
    buf = torch.empty(rows * k, dtype=x.dtype, device=x.device)
    dim = 0 if transposed else 1  # the centroid axis of a block
    for i in range(0, n, chunk_size):
        xb = x[i:i + chunk_size]
        m = len(xb)
        if augment:
            xa = x_aug[:m]
            xa[:, :d].copy_(xb)
            part = torch.mm(xa, c_aug, out=buf[:m * k].view(m, k))
        elif transposed:
            part = torch.addmm(c_sq[:, None], centroids, xb.T, alpha=-2.0, out=buf[:m * k].view(k, m))
        else:
            part = torch.addmm(c_sq, xb, c_t, alpha=-2.0, out=buf[:m * k].view(m, k))
        if prev is None or not cpu:  # (on an accelerator the indexed minimum is as fast)
            torch.min(part, 1, out=(d2[i:i + chunk_size], labels[i:i + chunk_size]))
        else:
            best = torch.amin(part, dim, out=d2[i:i + chunk_size])
            lab, old = labels[i:i + chunk_size], prev[i:i + chunk_size]
            stays = part.gather(dim, old.unsqueeze(dim)).squeeze(dim) <= best
            moved = torch.nonzero(~stays).flatten()
            if 4 * len(moved) > m:  # many moved (early iterations): one search of the whole block
                # (torch.min, not torch.argmin, which is slower on a CPU)
                torch.where(stays, old, part.min(dim).indices, out=lab)
            else:
                lab.copy_(old)
                if len(moved):
                    lab[moved] = part.index_select(1 - dim, moved).min(dim).indices
        d2[i:i + chunk_size] += (xb * xb).sum(1) if x_sq is None else x_sq[i:i + chunk_size]
    return labels, d2.clamp_(min=0)


def _kmeanspp(x: torch.Tensor, k: int, g: torch.Generator, chunk_size: int | None) -> torch.Tensor:
    """k-means++ (D^2 sampling), the same draws as the textbook loop, without its cost.

    The textbook loop computes every point's distance to every new centroid: k passes over
    the data. A point whose nearest centroid so far is c_j cannot move to a new centroid c
    when ||c - c_j|| >= 2 ||x - c_j|| (triangle inequality), so only the other points are
    computed (Raff, "Exact acceleration of k-means++ and k-means||", IJCAI 2021), with a
    margin for rounding; the distances, hence the draws, are those of the textbook loop.
    Rows that every process holds (k-means||'s candidates) take ``_kmeanspp_local`` instead.
    """
    n, d = x.shape
    start, total = _global_offsets(n, x.device)
    counts = dist.all_gather_cat(torch.tensor([n], device=x.device)).tolist()  # rows of each process
    first = torch.randint(total, (1,), generator=g)
    centroids = torch.empty(k, d, device=x.device, dtype=x.dtype)
    centroids[:1] = _pick_rows(x, first.to(x.device), start)
    d2 = assign(x, centroids[:1], chunk_size)[1]
    # the first distances come from ||x||^2 - 2 x.c + ||c||^2 (rounding ~ eps (||x||^2 + ||c||^2)):
    # a per-point allowance until the point's distance is recomputed directly
    slack = ((x * x).sum(1) + (centroids[0] * centroids[0]).sum()).mul_(1e-3)
    near = torch.zeros(n, dtype=torch.long, device=x.device)  # index of the nearest centroid so far
    # rows per block of the full passes: 8 MiB of float32 on a CPU (few Python steps, and the
    # allocator reuses the buffer), 65536 rows on an accelerator
    block = chunk_size or (max(256, (1 << 21) // max(d, 1)) if x.device.type == "cpu" else 65536)
    for t in range(1, k):
        mass = d2.double()
        sums = dist.all_gather_cat(mass.sum().reshape(1)).cpu()
        u = torch.rand(1, generator=g, dtype=torch.float64).item() * float(sums.sum())
        owner = int(torch.searchsorted(sums.cumsum(0), torch.tensor([u], dtype=torch.float64)).clamp(max=len(sums) - 1))
        while counts[owner] == 0:  # a process without rows never draws (u = 0 would land on it): the next one does
            owner = (owner + 1) % len(counts)
        idx = torch.zeros(1, dtype=torch.long, device=x.device)
        if owner == dist.rank():
            residual = u - float(sums[:owner].sum())
            cum = mass.cumsum(0)
            idx[0] = int(torch.searchsorted(cum, torch.tensor([residual], dtype=torch.float64, device=x.device))
                         .clamp(max=len(x) - 1)) + start
        idx = dist.all_reduce_sum(idx)
        c = _pick_rows(x, idx, start)
        centroids[t:t + 1] = c
        if t == k - 1:
            break  # the last centroid's distances are never used
        # points that may be closer to c than to their nearest centroid: ||c - c_near||^2 < 4 d2 (+ margins)
        to_c = ((centroids[:t] - c) ** 2).sum(1)
        cand = torch.nonzero(to_c[near] <= (d2 + slack).mul_(4.04)).flatten()
        if len(cand) == 0:
            continue
        if 2 * len(cand) < n:  # few: gather them
            rows = [cand]
        else:  # many: all rows, in cache-sized blocks
            rows = [slice(i, i + block) for i in range(0, n, block)]
        for r in rows:
            new = ((x[r] - c) ** 2).sum(1)
            closer = new < d2[r]
            if isinstance(r, slice):
                idx_r = torch.arange(r.start, min(r.stop, n), device=x.device)[closer]
            else:
                idx_r = r[closer]
            d2[idx_r] = new[closer]
            near[idx_r] = t
            slack[idx_r] = 0.0
    return centroids


def _kmeanspp_local(x: torch.Tensor, k: int, g: torch.Generator, weights: torch.Tensor | None = None,
                    max_table: int = 1 << 25) -> torch.Tensor:
    """k-means++ on rows every process holds (k-means||'s few thousand candidates): the
    textbook loop's draws, probability proportional to ``weights * D^2``, with each step's
    distances read from a table of all pairwise squared distances (one matrix product, when
    it has at most ``max_table`` entries) or from one matrix-vector product. A step is then a
    handful of small operations, where the pruned loop for distributed data costs ten times
    more per step on a few thousand rows."""
    n, d = x.shape
    first = torch.randint(n, (1,), generator=g) if weights is None else \
        torch.multinomial(weights.double().cpu(), 1, generator=g)
    x_sq = (x * x).sum(1)
    table = None
    if n * n <= max_table:  # ||a||^2 + ||b||^2 - 2 a.b, clamped at 0, exactly 0 on the diagonal
        table = torch.addmm(x_sq[:, None] + x_sq[None, :], x, x.T, alpha=-2.0).clamp_(min=0)
        table.fill_diagonal_(0.0)

    def dist_to(i: int) -> torch.Tensor:
        if table is not None:
            return table[i]
        row = torch.addmv(x_sq + x_sq[i], x, x[i], alpha=-2.0).clamp_(min=0)
        row[i] = 0.0
        return row

    w = None if weights is None else weights.to(x.device, torch.float64)
    chosen = [int(first)]
    d2 = dist_to(chosen[0]).double()
    for _ in range(1, k):
        mass = d2 if w is None else d2 * w
        cum = mass.cumsum(0)
        u = torch.rand(1, generator=g, dtype=torch.float64).item() * float(cum[-1])
        i = int(torch.searchsorted(cum, torch.tensor([u], dtype=torch.float64, device=x.device)).clamp(max=n - 1))
        chosen.append(i)
        torch.minimum(d2, dist_to(i), out=d2)
    return x[torch.tensor(chosen, device=x.device)].clone()


def _kmeans_parallel(x: torch.Tensor, k: int, g: torch.Generator, chunk_size: int | None, rounds: int = 5,
                     oversample: float = 0.5, full: torch.Tensor | None = None) -> torch.Tensor:
    """k-means|| (Bahmani, Moseley, Vattani, Kumar, Vassilvitskii, "Scalable k-means++", VLDB 2012).

    One random point, then ``rounds`` rounds that each keep every point with probability
    ``oversample * k * D^2 / sum(D^2)`` (about ``oversample * k`` new candidates) and update
    every point's distance to the candidates with one blocked matrix product. The candidates,
    weighted by how many points are nearest to each, are then reduced to ``k`` centroids by
    weighted k-means++. Each point is compared with about ``rounds * oversample * k``
    candidates in a few matrix products, where k-means++ makes ``k`` sequential passes.
    The random draws are made for the global row indices, so the result does not depend on
    how rows are split over processes. ``full``: the rows ``x`` was sampled from, which
    degenerate data (fewer distinct candidates than ``k``) seed from by k-means++.
    """
    n, d = x.shape
    start, total = _global_offsets(n, x.device)
    expected = max(1.0, oversample * k)
    first = torch.randint(total, (1,), generator=g)
    cands = [_pick_rows(x, first.to(x.device), start)]
    if k == 1:
        return cands[0]
    x_sq = (x * x).sum(1)  # once for the rounds' assignments
    near, d2 = assign(x, cands[0], chunk_size, x_sq)
    count = 1
    for _ in range(rounds):
        phi = float(dist.all_reduce_sum(d2.double().sum().reshape(1)))
        if phi <= 0:  # every point is a candidate already
            break
        u = torch.rand(total, generator=g, dtype=torch.float64)[start:start + n].to(x.device)
        new = dist.all_gather_rows(x[u * phi < expected * d2.double()])
        if len(new) == 0:
            continue
        lab, dd = assign(x, new, chunk_size, x_sq)
        closer = dd < d2
        d2, near = torch.where(closer, dd, d2), torch.where(closer, lab + count, near)
        cands.append(new)
        count += len(new)
    cands = torch.cat(cands)
    weights = dist.all_reduce_sum(torch.bincount(near, minlength=count).double())
    if int((weights > 0).sum()) < k:  # too few distinct candidates (tiny or degenerate data)
        return _kmeanspp(x if full is None else full, k, g, chunk_size)
    return _kmeanspp_local(cands, k, g, weights)


def _sample_rows(x: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
    """A uniform sample of ``m`` of the rows of all processes, each process keeping the ones
    it holds, in global order: the sample does not depend on how the rows are split."""
    start, total = _global_offsets(len(x), x.device)
    if m >= total:
        return x
    idx = torch.randperm(total, generator=g)[:m].sort().values.to(x.device) - start
    return x[idx[(idx >= 0) & (idx < len(x))]]


def _init(x, k, init, g, chunk_size, sample=None):
    """Starting centroids; k-means|| draws them from a uniform sample of ``sample`` rows (all rows
    when None). ``init`` and ``k`` are the ones ``_check_kmeans_args`` accepted."""
    if torch.is_tensor(init):  # given starting centroids
        return init.to(x).clone()
    if init == "kmeans++":
        return _kmeanspp(x, k, g, chunk_size)
    if init == "kmeans||":
        return _kmeans_parallel(x if sample is None else _sample_rows(x, sample, g), k, g, chunk_size, full=x)
    start, total = _global_offsets(len(x), x.device)  # "random"
    idx = torch.randperm(total, generator=g)[:k].to(x.device)
    return _pick_rows(x, idx, start)


def _cluster_sums(x: torch.Tensor, labels: torch.Tensor, k: int, block: int | None = None) -> torch.Tensor:
    """(k, D) sums of the rows of each cluster, in float64 (k-means updates them by the rows
    that move, so they must not carry float32 rounding), converting a block of rows at a time
    (on a CPU 4 MiB of float64, a buffer the allocator reuses instead of faulting in fresh pages)."""
    block = block or (max(1, (1 << 19) // max(x.shape[1], 1)) if x.device.type == "cpu" else 65536)
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
    for i in range(0, len(x), block):
        sums.index_add_(0, labels[i:i + block], x[i:i + block].double())
    return sums


def _reseed_empty(centroids, counts, g, eps=1e-4) -> int:
    """Split large clusters into empty ones (in place); returns how many were re-seeded."""
    empty = torch.nonzero(counts == 0).flatten().tolist()
    for j in empty:
        probs = (counts.double() - 1).clamp(min=0).cpu()
        if probs.sum() <= 0:
            break
        src = int(torch.multinomial(probs, 1, generator=g))
        noise = 1 + eps * torch.where(torch.rand(centroids.shape[1], generator=g) < 0.5, -1.0, 1.0).to(centroids)
        centroids[j] = centroids[src] * noise
        centroids[src] = centroids[src] / noise
        counts[j] = counts[src] // 2
        counts[src] -= counts[j]
    return len(empty)


def _positive_int(name: str, v) -> int:
    try:
        if isinstance(v, bool):
            raise TypeError
        v = operator.index(v)
    except TypeError:
        v = None
    if v is None or v < 1:
        return None
    return v


def _check_kmeans_args(x, k, iters, restarts, init, init_sample=None) -> int:
    """Errors a caller can make, reported before any work; returns the global number of rows."""
    if not torch.is_tensor(x) or x.ndim != 2:
        raise ValueError(f"k-means clusters the rows of a 2-D tensor (N, D), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    for name, v in (("k", k), ("iters", iters), ("restarts", restarts)):
        if _positive_int(name, v) is None:
            raise ValueError(f"{name} must be a positive integer{' (the number of clusters)' if name == 'k' else ''}, "
                             f"got {v!r}")
    _, total = _global_offsets(len(x), x.device)  # under torch.distributed: all processes' rows
    if total == 0 or x.shape[1] == 0:
        raise ValueError(f"k-means got no data: x has shape {tuple(x.shape)} (rows over all processes: {total})")
    if k > total:
        raise ValueError(f"k={k} clusters need at least {k} points, got N={total}"
                         f"{' over all processes' if dist.is_distributed() else ''}; lower k or add data")
    if len(x) and not bool(torch.isfinite(x.sum(dtype=torch.float32))) and not bool(torch.isfinite(x).all()):
        bad = torch.nonzero(~torch.isfinite(x).all(1)).flatten()
        raise ValueError(f"x has NaN or infinite features in {len(bad)} rows (first: row {int(bad[0])}); "
                         "remove or impute them before clustering")
    if torch.is_tensor(init) and init.shape != (k, x.shape[1]):
        raise ValueError(f"initial centroids must have shape ({k}, {x.shape[1]}), got {tuple(init.shape)}")
    if not torch.is_tensor(init) and init not in ("kmeans++", "kmeans||", "random"):
        raise ValueError(f"unknown init {init!r}; use 'kmeans++', 'kmeans||', 'random' or a (k, D) tensor")
    if init_sample is not None and _positive_int("init_sample", init_sample) is None:
        raise ValueError(f"init_sample must be a positive integer (rows per cluster k-means|| seeds from) "
                         f"or None (all rows), got {init_sample!r}")
    return total


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, iters: int = 25, tol: float = 1e-4, init="kmeans||",
           restarts: int = 1, seed: int = 0, chunk_size: int | None = None, reseed_empty: bool = True,
           init_sample: int | None = SEED_SAMPLE_PER_CLUSTER) -> KMeansResult:
    """Cluster the rows of ``x`` (N, D) into ``k`` clusters; see the module docstring.

    init: ``"kmeans||"`` (scalable k-means++, the default), ``"kmeans++"``, ``"random"`` or a
    (k, D) tensor of starting centroids. init_sample: k-means|| seeds from a uniform sample of
    at most ``init_sample * k`` rows (None: from all rows).

    Raises ValueError, before any work, for k < 1, k > N (under ``torch.distributed`` N is
    the number of rows over all processes), N = 0, NaN or infinite features, and a
    wrongly shaped ``init``.
    """
    total = _check_kmeans_args(x, k, iters, restarts, init, init_sample)
    x = x.float()
    x_sq = (x * x).sum(1)  # once, not at every assignment
    best = None
    for r in range(restarts):
        g = torch.Generator().manual_seed(seed + 1000 * r)
        centroids = _init(x, k, init, g, chunk_size, None if init_sample is None else init_sample * k)
        history, reseeded, prev, prev_labels = [], 0, None, None
        it, converged = 0, False
        for it in range(1, iters + 1):
            labels, d2 = assign(x, centroids, chunk_size, x_sq, prev=prev_labels)
            inertia = dist.all_reduce_sum(d2.sum().double().reshape(1)).item()
            history.append(inertia)
            changed = total
            if prev_labels is not None:
                moved = labels != prev_labels
                changed = dist.all_reduce_sum(moved.sum().reshape(1)).item()
                if changed == 0:  # no point moved: the centroids are final (scikit-learn's strict convergence)
                    converged = True
                    break
            if 2 * changed > total:  # the first iteration, or most points moved: sum every row
                sums = dist.all_reduce_sum(_cluster_sums(x, labels, k))
            else:  # after the first iterations few points move: move only their rows between the sums
                moved = torch.nonzero(moved).flatten()
                xm = x[moved]
                delta = _cluster_sums(xm, labels[moved], k).sub_(_cluster_sums(xm, prev_labels[moved], k))
                sums += dist.all_reduce_sum(delta)
            prev_labels = labels
            counts = dist.all_reduce_sum(torch.bincount(labels, minlength=k).to(x.device))
            nonempty = counts > 0
            centroids = torch.where(nonempty[:, None], (sums / counts.clamp(min=1)[:, None]).to(x.dtype), centroids)
            if reseed_empty and not bool(nonempty.all()):
                reseeded += _reseed_empty(centroids, counts, g)
            if prev is not None and prev - inertia <= tol * max(prev, 1e-12):
                break
            prev = inertia
        if not converged:  # labels and inertia of the final centroids
            labels, d2 = assign(x, centroids, chunk_size, x_sq, prev=labels)
            inertia = dist.all_reduce_sum(d2.sum().double().reshape(1)).item()
        res = KMeansResult(centroids, labels, inertia, it, history, reseeded)
        if best is None or res.inertia < best.inertia:
            best = res
    return best


from .whitening import PCA, fit_pca, uniform_cluster_sampler  # noqa: E402,F401  (DeepCluster's other tools)
