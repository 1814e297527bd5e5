"""The evaluation toolkit every chapter and the CLI use."""

from .knn import knn_accuracy, knn_predict
from .linear import linear_probe
from .metrics import (ari, cluster_report, cluster_sizes, clustering_metrics, contingency,
                      hungarian_accuracy, hungarian_match, majority_accuracy, mutual_information, nmi)
from .report import evaluate_features, evaluate_method, kmeans_on_features
from .plots import (embed_umap, plot_cluster_grid, plot_cluster_sizes, plot_curves, plot_embedding,
                    plot_image_grid, plot_umap)

__all__ = [
    "knn_accuracy", "knn_predict", "linear_probe", "evaluate_method", "evaluate_features", "kmeans_on_features",
    "ari", "nmi", "mutual_information", "contingency", "hungarian_accuracy", "hungarian_match", "majority_accuracy",
    "cluster_report", "cluster_sizes", "clustering_metrics",
    "embed_umap", "plot_embedding", "plot_umap", "plot_image_grid", "plot_cluster_grid",
    "plot_curves", "plot_cluster_sizes",
]
