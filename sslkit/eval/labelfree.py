"""What can be said of a trained method without any label: its own clusters of the training images.

``python -m sslkit.train`` writes this as ``results.json`` for a run on images without labels
(and no ``--eval_dataset``): how many of the K clusters the method's last labelling of the
training images uses, the normalised entropy of their sizes (1: equal sizes, 0: one cluster),
the effective number of clusters exp(H), the largest cluster's share, and the sizes themselves.
The per-epoch monitors (loss, these statistics, NMI with the previous epoch's labelling) are
in ``metrics.jsonl``.
"""

from __future__ import annotations

from .metrics import cluster_report


def label_free_report(method, num_images: int) -> dict:
    """The cluster statistics of ``method.pseudo_labels()`` (nothing but the image count for a
    method without a labelling of its training images)."""
    out = {"train_images": int(num_images)}
    labels = method.pseudo_labels()
    k = method.cluster_count(method.params)
    if labels is None or k is None or labels.dim() != 1 or not bool((labels >= 0).any()):
        return out
    labels = labels[labels >= 0].cpu()
    out["labelled_images"] = len(labels)
    rep = cluster_report(labels, k)
    out.update({"k": k, "used_clusters": rep["used_clusters"], "cluster_entropy": rep["normalized_entropy"],
                "effective_clusters": rep["effective_clusters"], "largest_cluster": rep["largest_fraction"],
                "cluster_sizes": sorted(rep["sizes"], reverse=True)})
    return out
