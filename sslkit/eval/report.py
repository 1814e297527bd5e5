"""One evaluation of a trained network: the numbers ``python -m sslkit.eval`` and
``python -m sslkit.train`` write to JSON (and the results table cites).

* kNN (weighted, k and temperature from the run's config) and the linear probe on the
  frozen backbone features (``evaluate_features``: any backbone, trained or not);
* clustering with as many clusters as classes, for every network: k-means (K = classes) on
  the L2-normalised backbone features of the training images, the test images assigned to the
  nearest centroid; NMI, ARI and Hungarian (one-to-one) accuracy on the test images;
* for methods with clusters of their own (SeLa's heads, DeepCluster's k-means, SwAV's
  prototypes): each head's assignment of the test images against the classes, NMI, ARI and
  majority-vote (many-to-one) accuracy, the standard for an over-clustering, with K beside them.
"""

from __future__ import annotations

import torch

from .knn import knn_accuracy
from .linear import linear_probe
from .metrics import cluster_report, clustering_metrics

KMEANS_SEED = 0


def kmeans_on_features(train_features: torch.Tensor, test_features: torch.Tensor, k: int,
                       seed: int = KMEANS_SEED) -> torch.Tensor:
    """The test images' clusters of a k-means (K = ``k``) fitted on the L2-normalised training
    features: each test feature's nearest centroid (int64, on the CPU)."""
    import torch.nn.functional as F

    from ..cluster import kmeans

    res = kmeans(F.normalize(train_features.float(), dim=1), k, iters=50, restarts=5, seed=seed)
    x = F.normalize(test_features.float(), dim=1).to(res.centroids.device)
    return (2 * x @ res.centroids.t() - res.centroids.pow(2).sum(1)).argmax(1).cpu()


def evaluate_features(backbone, train_images, train_labels, test_images, test_labels, knn_k: int = 200,
                      knn_temperature: float = 0.1, linear: bool = True) -> dict:
    """kNN, linear probe and k-means with K = classes on ``backbone``'s features (eval mode)."""
    from ..backbones import extract_features

    ftr = extract_features(backbone, train_images)
    fte = extract_features(backbone, test_images)
    out = {"knn_acc": knn_accuracy(ftr, train_labels, fte, test_labels, k=knn_k, temperature=knn_temperature),
           "train_images": len(train_labels), "test_images": len(test_labels)}
    if linear:
        out["linear_acc"] = linear_probe(ftr, train_labels, fte, test_labels)["test_acc"]
    classes = int(torch.as_tensor(train_labels).max()) + 1
    km = clustering_metrics(kmeans_on_features(ftr, fte, classes), test_labels.cpu(), classes)
    out["kmeans_classes"] = {"k": classes, "nmi": km["nmi"], "ari": km["ari"], "hungarian_acc": km["hungarian_acc"]}
    return out


def head_scores(heads: list[torch.Tensor], test_labels, k: int | None) -> list[dict]:
    """Each head's clusters of the test images against the classes (``k``: the method's K)."""
    out = []
    for labels in heads:
        k_head = k or int(labels.max()) + 1
        scores = clustering_metrics(labels.cpu(), test_labels.cpu(), k_head)
        out.append({**scores, "k": k_head, "used_clusters": cluster_report(labels.cpu(), k_head)["used_clusters"]})
    return out


def evaluate_method(method, train_images, train_labels, test_images, test_labels, knn_k: int = 200,
                    knn_temperature: float = 0.1, linear: bool = True) -> dict:
    """``evaluate_features`` of the method's backbone, and its own clusters' scores (``heads``,
    ``best_head_nmi``) when it has clusters."""
    method.eval()
    out = evaluate_features(method.backbone, train_images, train_labels, test_images, test_labels, knn_k,
                            knn_temperature, linear)
    heads = method.predict_clusters(test_images)
    if heads:
        out["heads"] = head_scores(heads, test_labels, method.cluster_count(method.params))
        out["best_head_nmi"] = max(h["nmi"] for h in out["heads"])
    return out
