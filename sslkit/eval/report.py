"""One evaluation of a trained method: the numbers ``python -m sslkit.eval`` and
``python -m sslkit.train`` write to JSON (and the README's results table cites).

* kNN (weighted, k and temperature from the run's config) and the linear probe on the
  frozen backbone features;
* for methods with clustering heads (SeLa's heads, DeepCluster's classifier, SwAV's
  prototypes): NMI, ARI and Hungarian accuracy of each head's argmax on the test images
  against the classes, and the cluster usage.
"""

from __future__ import annotations

import torch

from .knn import knn_accuracy
from .linear import linear_probe
from .metrics import cluster_report, clustering_metrics


def evaluate_method(method, train_images, train_labels, test_images, test_labels, knn_k: int = 200,
                    knn_temperature: float = 0.1, linear: bool = True) -> dict:
    from ..backbones import extract_features

    method.eval()
    ftr = extract_features(method.backbone, train_images)
    fte = extract_features(method.backbone, test_images)
    out = {"knn_acc": knn_accuracy(ftr, train_labels, fte, test_labels, k=knn_k, temperature=knn_temperature),
           "train_images": len(train_labels), "test_images": len(test_labels)}
    if linear:
        out["linear_acc"] = linear_probe(ftr, train_labels, fte, test_labels)["test_acc"]
    heads = method.predict_clusters(test_images)
    if heads:
        per_head = []
        for labels in heads:
            scores = clustering_metrics(labels.cpu(), test_labels.cpu())
            rep = cluster_report(labels.cpu(), int(labels.max()) + 1)
            per_head.append({"nmi": scores["nmi"], "ari": scores["ari"], "acc": scores["acc"],
                             "used_clusters": rep["used_clusters"]})
        out["heads"] = per_head
        out["best_head_nmi"] = max(h["nmi"] for h in per_head)
    return out


@torch.no_grad()
def batched_argmax(fn, images: torch.Tensor, device, batch_size: int = 512) -> torch.Tensor:
    """``fn(float images) -> (B, K) scores`` over a uint8 image tensor in batches; argmax per image."""
    from ..augment import to_float

    return torch.cat([fn(to_float(images[i:i + batch_size].to(device))).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])
