"""Weighted k-nearest-neighbour classification on L2-normalised features.

The protocol of Wu et al. (2018, "instance discrimination"), used as the standard kNN
monitor by most SSL code: cosine similarity to every training feature, the ``k`` most
similar vote for their class with weight ``exp(s / temperature)``; k=200, temperature 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                k: int = 200, temperature: float = 0.1, num_classes: int | None = None,
                chunk_size: int = 1024) -> torch.Tensor:
    """Predicted class of each test feature (int64, on the test features' device)."""
    if len(train_features) != len(train_labels):
        raise ValueError(f"knn: {len(train_features)} training features but {len(train_labels)} training labels; "
                         "pass one label per training feature")
    if len(train_features) == 0:
        raise ValueError("knn: the training bank is empty; pass at least one training feature")
    if train_features.shape[1:] != test_features.shape[1:]:
        raise ValueError(f"knn: training features of shape {tuple(train_features.shape[1:])} and test features of "
                         f"shape {tuple(test_features.shape[1:])}: they must come from the same network")
    if k < 1 or not temperature > 0:
        raise ValueError(f"knn: k={k} and temperature={temperature}; k must be at least 1 and temperature > 0")
    dev = test_features.device
    bank = F.normalize(train_features.float().to(dev), dim=1)
    labels = train_labels.to(dev)
    num_classes = num_classes or int(labels.max()) + 1
    k = min(k, len(bank))
    preds = []
    for i in range(0, len(test_features), chunk_size):
        q = F.normalize(test_features[i:i + chunk_size].float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(q), num_classes, device=dev)
        votes.scatter_add_(1, labels[idx], weights)
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_features, train_labels, test_features, test_labels, k: int = 200,
                 temperature: float = 0.1, num_classes: int | None = None) -> float:
    """Top-1 accuracy (in %) of the weighted kNN classifier."""
    if len(test_features) != len(test_labels):
        raise ValueError(f"knn: {len(test_features)} test features but {len(test_labels)} test labels; "
                         "pass one label per test feature")
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, num_classes)
    return 100.0 * (pred.cpu() == test_labels.cpu()).float().mean().item()
