"""Figures the chapters share: UMAP of features, image grids per cluster, curves, cluster sizes.

Every function draws into a new (or given) matplotlib figure and returns it; figures are
kept small so an executed notebook stays light.
"""

from __future__ import annotations

import warnings

import torch


def _plt():
    import matplotlib.pyplot as plt

    return plt


def embed_umap(features: torch.Tensor, n_neighbors: int = 15, seed: int = 0):
    """A 2-D UMAP embedding (numpy array) of L2-normalised features (cosine metric)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's import and seeded runs warn about tqdm and n_jobs
        import umap

        x = torch.nn.functional.normalize(features.float().cpu(), dim=1).numpy()
        return umap.UMAP(n_neighbors=n_neighbors, metric="cosine", random_state=seed).fit_transform(x)


def plot_embedding(embedding, colors, names=None, title: str = "", ax=None, s: float = 3):
    """Scatter a 2-D embedding coloured by integer labels (classes or clusters)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    colors = torch.as_tensor(colors).cpu().numpy()
    cmap = "tab10" if colors.max() < 10 else "tab20" if colors.max() < 20 else "nipy_spectral"
    sc = ax.scatter(embedding[:, 0], embedding[:, 1], c=colors, cmap=cmap, s=s, linewidths=0)
    if names is not None and len(names) <= 20:
        handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(i)), label=n)
                   for i, n in enumerate(names)]
        ax.legend(handles=handles, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.figure


def plot_umap(features, labels, names=None, title: str = "UMAP of features", seed: int = 0, ax=None):
    return plot_embedding(embed_umap(features, seed=seed), labels, names, title, ax=ax)


def _as_hwc(images: torch.Tensor):
    x = images.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def plot_image_grid(images: torch.Tensor, nrow: int = 8, row_labels=None, title: str = "", scale: float = 0.6):
    """Images (N,C,H,W; uint8 or float in [0,1]) in rows of ``nrow``."""
    plt = _plt()
    n = len(images)
    rows = (n + nrow - 1) // nrow
    fig, axes = plt.subplots(rows, nrow, figsize=(nrow * scale, rows * scale), squeeze=False)
    imgs = _as_hwc(images)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(imgs[i], interpolation="nearest")
    if row_labels is not None:
        for r, lab in enumerate(row_labels[:rows]):
            axes[r, 0].text(-0.1, 0.5, str(lab), transform=axes[r, 0].transAxes, ha="right",
                            va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.15 if row_labels is not None else 0.01, right=0.99)
    return fig


def plot_cluster_grid(images: torch.Tensor, assign: torch.Tensor, clusters=None, per_cluster: int = 8,
                      title: str = "images per cluster", seed: int = 0):
    """A row of random images for each cluster (the largest clusters by default)."""
    assign = torch.as_tensor(assign).cpu()
    if clusters is None:
        clusters = torch.bincount(assign).argsort(descending=True)[:8].tolist()
    g = torch.Generator().manual_seed(seed)
    picked, labels = [], []
    for c in clusters:
        idx = torch.nonzero(assign == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)[:per_cluster]]
        row = images[idx.to(images.device)].cpu() if len(idx) else images[:0].cpu()
        if len(row) < per_cluster:  # pad short rows with blanks
            row = torch.cat([row, torch.zeros((per_cluster - len(row),) + tuple(images.shape[1:]), dtype=images.dtype)])
        picked.append(row)
        labels.append(f"c{c} ({int((assign == c).sum())})")
    return plot_image_grid(torch.cat(picked), nrow=per_cluster, row_labels=labels, title=title)


def plot_curves(history, keys, xkey: str = "epoch", title: str = "", ax=None, xlabel: str | None = None,
                ylabel: str = ""):
    """Plot ``keys`` of a list of metric dicts (as logged by the training loop) against ``xkey``.

    ``keys``: a list of metric names, or a dict ``{name: legend label}`` to give the curves
    names in words; ``xlabel`` defaults to ``xkey``.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    labels = dict(keys) if isinstance(keys, dict) else {k: k for k in keys}
    for k, label in labels.items():
        pts = [(h[xkey], h[k]) for h in history if k in h and xkey in h]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel or xkey)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_cluster_sizes(assign, num_clusters: int, title: str = "cluster sizes", ax=None):
    """Bar chart of cluster sizes, largest first (a collapsed labelling shows one tall bar)."""
    plt = _plt()
    from .metrics import cluster_report, cluster_sizes

    sizes = cluster_sizes(assign, num_clusters).sort(descending=True).values
    rep = cluster_report(assign, num_clusters)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.5))
    ax.bar(range(num_clusters), sizes.numpy(), width=1.0)
    ax.set_xlabel("cluster (sorted by size)")
    ax.set_ylabel("images")
    ax.set_title(f"{title}: H/ln K = {rep['normalized_entropy']:.2f}, "
                 f"effective K = {rep['effective_clusters']:.1f}", fontsize=9)
    return ax.figure
