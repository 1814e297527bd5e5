"""Linear probe: multinomial logistic regression on frozen, precomputed features.

The protocol of the CLIP paper's linear-probe evaluation (Radford et al., 2021), sized for
small data: features standardised with the training set's mean and std, the classifier
fitted full-batch by L-BFGS with an L2 penalty, and the penalty chosen on a held-out
fifth of the training set from a small log-spaced grid before refitting on all of it.
No augmentation; features are computed once, so a probe takes seconds on a CPU, and the
result does not hinge on a learning rate that suits one feature size and not another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_PENALTIES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _fit(x: torch.Tensor, y: torch.Tensor, num_classes: int, penalty: float, max_iter: int) -> torch.nn.Linear:
    layer = torch.nn.Linear(x.shape[1], num_classes).to(x.device)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(layer(x), y) + 0.5 * penalty * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return layer


def _accuracy(layer, x, y) -> float:
    with torch.no_grad():
        return (layer(x).argmax(1) == y).float().mean().item() * 100


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, penalties=DEFAULT_PENALTIES, max_iter: int = 100,
                 val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Fit on the training features, report train/test accuracy (%) and the chosen L2 penalty."""
    dev = train_features.device
    xtr = train_features.float()
    mean, std = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True) + 1e-6
    xtr = (xtr - mean) / std
    xte = (test_features.to(dev).float() - mean) / std
    ytr, yte = train_labels.to(dev), test_labels.to(dev)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    penalties = list(penalties)
    best = penalties[0]
    if len(penalties) > 1:
        perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(seed)).to(dev)
        n_val = max(1, int(len(xtr) * val_fraction))
        val, fit = perm[:n_val], perm[n_val:]
        scores = [_accuracy(_fit(xtr[fit], ytr[fit], num_classes, p, max_iter), xtr[val], ytr[val]) for p in penalties]
        best = penalties[max(range(len(penalties)), key=lambda i: (scores[i], penalties[i]))]
    layer = _fit(xtr, ytr, num_classes, best, max_iter)
    return {"train_acc": _accuracy(layer, xtr, ytr), "test_acc": _accuracy(layer, xte, yte),
            "penalty": best, "layer": layer}
