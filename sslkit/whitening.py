"""PCA-whitening and the uniform-over-clusters sampler: DeepCluster's tools around k-means.

Both run on the device of their input; ``fit_pca`` sums its covariance across processes under
``torch.distributed``, so every process gets the PCA of all rows.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from . import dist


@dataclass
class PCA:
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (D, d) principal directions, by decreasing variance
    variances: torch.Tensor  # (d,)
    whiten: bool = True
    eps: float = 1e-5

    def transform(self, x: torch.Tensor, l2: bool = True) -> torch.Tensor:
        y = (x.float() - self.mean) @ self.components
        if self.whiten:
            y = y / torch.sqrt(self.variances + self.eps)
        return torch.nn.functional.normalize(y, dim=1) if l2 else y


@torch.no_grad()
def fit_pca(x: torch.Tensor, dim: int, whiten: bool = True, eps: float = 1e-5) -> PCA:
    """PCA of the rows of ``x`` (covariance summed over processes), keeping ``dim`` components.

    Raises ValueError when ``dim`` is not between 1 and D, or there are no rows.

    DeepCluster's pipeline is ``fit_pca(f, 256).transform(f)``: centre, project, whiten
    (eigenvalue power -0.5), L2-normalise.
    """
    if not torch.is_tensor(x) or x.ndim != 2:
        raise ValueError(f"fit_pca needs a 2-D tensor (N, D), got {getattr(x, 'shape', type(x))}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 1 <= dim <= x.shape[1]:
        raise ValueError(f"dim must be an integer between 1 and the feature dimension D={x.shape[1]}, got {dim!r}")
    x = x.double()
    n = dist.all_reduce_sum(torch.tensor(float(len(x)), device=x.device, dtype=torch.float64))
    if n.item() == 0:
        raise ValueError("fit_pca got no rows (N = 0 over all processes)")
    mean = dist.all_reduce_sum(x.sum(0)) / n
    xc = x - mean
    cov = dist.all_reduce_sum(xc.T @ xc) / n
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)[:dim]
    return PCA(mean.float(), evecs[:, order].float(), evals[order].clamp(min=0).float(), whiten, eps)


def uniform_cluster_sampler(labels: torch.Tensor, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DeepCluster's sampler: ``num_samples`` indices drawn uniformly over the non-empty
    clusters (about ``num_samples / K'`` per cluster, with replacement for small clusters),
    shuffled. Large clusters cannot dominate an epoch."""
    labels = labels.cpu()
    clusters = torch.unique(labels)
    per = num_samples // len(clusters) + 1
    picks = []
    for c in clusters.tolist():
        members = torch.nonzero(labels == c).flatten()
        if len(members) >= per:
            picks.append(members[torch.randperm(len(members), generator=generator)[:per]])
        else:
            picks.append(members[torch.randint(len(members), (per,), generator=generator)])
    idx = torch.cat(picks)
    return idx[torch.randperm(len(idx), generator=generator)][:num_samples]
