"""Clustering metrics and the collapse detector, in plain torch (no scikit-learn).

* ``nmi``: normalised mutual information, I(a;b) / mean(H(a), H(b)) (the arithmetic
  normalisation, scikit-learn's default and the one DeepCluster reports).
* ``ari``: adjusted Rand index (Hubert & Arabie, 1985).
* ``hungarian_accuracy``: accuracy after the best one-to-one map from clusters to classes
  (scipy's ``linear_sum_assignment``); clusters left unmatched count as errors. It is the
  measure for a clustering with as many clusters as classes: with K > classes most clusters
  stay unmatched, and the accuracy is capped near classes / K.
* ``majority_accuracy``: each cluster takes the class most of its images have (many-to-one),
  the standard accuracy of an over-clustering; with K = N it is 100 %, so read it beside
  NMI and K.
* ``cluster_report``: cluster sizes, their entropy, the effective number of clusters
  exp(H) and the largest cluster's share: a collapsed labelling has entropy near 0.
"""

from __future__ import annotations

import math

import torch


def contingency(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Counts n[i, j] of items with a == i and b == j (float64), after relabelling to 0..K-1."""
    a = torch.unique(torch.as_tensor(a).cpu(), return_inverse=True)[1]
    b = torch.unique(torch.as_tensor(b).cpu(), return_inverse=True)[1]
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    n = torch.zeros(ka * kb, dtype=torch.float64)
    n.index_add_(0, a * kb + b, torch.ones(len(a), dtype=torch.float64))
    return n.view(ka, kb)


def _entropy(counts: torch.Tensor) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def mutual_information(a, b) -> float:
    n = contingency(a, b)
    total = n.sum()
    pij = n / total
    pi, pj = pij.sum(1, keepdim=True), pij.sum(0, keepdim=True)
    nz = pij > 0
    return float((pij[nz] * (pij[nz] / (pi * pj)[nz]).log()).sum())


def nmi(a, b) -> float:
    """Normalised mutual information in [0, 1]; 1 when the partitions agree up to renaming."""
    n = contingency(a, b)
    ha, hb = _entropy(n.sum(1)), _entropy(n.sum(0))
    if ha == 0 and hb == 0:
        return 1.0
    denom = 0.5 * (ha + hb)
    return max(0.0, mutual_information(a, b) / denom) if denom > 0 else 0.0


def ari(a, b) -> float:
    """Adjusted Rand index: 1 for identical partitions, about 0 for independent ones."""
    n = contingency(a, b)

    def comb2(x):
        return (x * (x - 1) / 2).sum()

    total = comb2(n.sum().view(1))
    sum_ij, sum_a, sum_b = comb2(n), comb2(n.sum(1)), comb2(n.sum(0))
    expected = sum_a * sum_b / total
    max_index = 0.5 * (sum_a + sum_b)
    if max_index == expected:
        return 1.0
    return float((sum_ij - expected) / (max_index - expected))


def hungarian_match(pred, true) -> dict:
    """The one-to-one map cluster -> class maximising agreement: {cluster_id: class_id}."""
    from scipy.optimize import linear_sum_assignment

    pred, true = torch.as_tensor(pred).cpu().long(), torch.as_tensor(true).cpu().long()
    kp, kt = int(pred.max()) + 1, int(true.max()) + 1
    n = torch.zeros(kp, kt, dtype=torch.float64)
    n.index_put_((pred, true), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(n.numpy(), maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def hungarian_accuracy(pred, true) -> float:
    """Accuracy (in %) of the clustering ``pred`` after the best cluster-to-class matching."""
    pred, true = torch.as_tensor(pred).cpu().long(), torch.as_tensor(true).cpu().long()
    mapping = hungarian_match(pred, true)
    lut = torch.full((int(pred.max()) + 1,), -1, dtype=torch.long)
    for r, c in mapping.items():
        lut[r] = c
    return 100.0 * (lut[pred] == true).double().mean().item()


def majority_accuracy(pred, true) -> float:
    """Accuracy (in %) when every cluster of ``pred`` is labelled by its most frequent class."""
    n = contingency(pred, true)
    return 100.0 * float(n.max(1).values.sum() / n.sum())


def cluster_sizes(assign, num_clusters: int | None = None) -> torch.Tensor:
    assign = torch.as_tensor(assign).cpu().long()
    return torch.bincount(assign, minlength=num_clusters or int(assign.max()) + 1)


def cluster_report(assign, num_clusters: int) -> dict:
    """Sizes and collapse statistics of a hard labelling into ``num_clusters`` clusters."""
    sizes = cluster_sizes(assign, num_clusters).double()
    h = _entropy(sizes)
    return {
        "sizes": sizes.long().tolist(),
        "entropy": h,
        "normalized_entropy": h / math.log(num_clusters) if num_clusters > 1 else 1.0,
        "effective_clusters": math.exp(h),
        "used_clusters": int((sizes > 0).sum()),
        "largest_fraction": float(sizes.max() / sizes.sum()),
    }


USAGE_BINS = (0.0, 0.5, 1.0, 2.0, 4.0)  # cluster size / (N / K): empty, <1/2, <1, <2, <4, >=4 times the fair share


def usage_histogram(sizes, num_images: int | None = None) -> list[int]:
    """How many clusters hold 0, (0, 1/2), [1/2, 1), [1, 2), [2, 4) and >= 4 times the fair
    share N/K of the images: an equipartition puts every cluster in the [1, 2) bin (or
    [1/2, 1)); a collapse empties most clusters and puts a few in the last bin."""
    sizes = torch.as_tensor(sizes).double()
    share = sizes / ((num_images or float(sizes.sum())) / len(sizes))
    empty = int((sizes == 0).sum())
    edges = torch.tensor(USAGE_BINS[1:], dtype=torch.float64)
    nonempty = share[sizes > 0]
    counts = torch.bincount(torch.bucketize(nonempty, edges, right=True), minlength=len(edges) + 1)
    return [empty] + counts.tolist()


def collapse_statistics(assign, num_clusters: int) -> dict:
    """The collapse monitor's numbers for a hard labelling, as one flat record (for metrics.jsonl):
    normalised entropy of the cluster sizes, effective number of clusters exp(H), clusters
    used, the largest cluster's share, and the usage histogram (``usage_histogram``)."""
    rep = cluster_report(assign, num_clusters)
    return {"cluster_entropy": rep["normalized_entropy"], "effective_clusters": rep["effective_clusters"],
            "used_clusters": rep["used_clusters"], "largest_cluster": rep["largest_fraction"],
            "cluster_usage_hist": usage_histogram(rep["sizes"])}


def clustering_metrics(pred, true, num_clusters: int | None = None) -> dict:
    """NMI, ARI and majority-vote accuracy of ``pred`` against ground-truth ``true``, and the
    Hungarian (one-to-one) accuracy only when the clustering has as many clusters as there are
    classes (``num_clusters``: the clustering's K, default the clusters ``pred`` uses); else None."""
    pred, true = torch.as_tensor(pred).cpu(), torch.as_tensor(true).cpu()
    k = num_clusters or len(torch.unique(pred))
    one_to_one = hungarian_accuracy(pred, true) if k == len(torch.unique(true)) else None
    return {"nmi": nmi(pred, true), "ari": ari(pred, true), "majority_acc": majority_accuracy(pred, true),
            "hungarian_acc": one_to_one}
