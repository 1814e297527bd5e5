"""sslkit: the toolkit of the book on clustering-based self-supervised learning.

Chapters use it as ``import sslkit as sk``; ``python -m sslkit.train`` runs the same code
at full scale. Everything listed in ``__all__`` is the public API.
"""

from . import augment, dist, nce
from .augment import AugmentConfig, augment as augment_batch, multi_crop, to_float
from .backbones import DATASET_STATS, Backbone, Sobel, build_backbone, extract_features
from .cluster import PCA, KMeansResult, fit_pca, kmeans, uniform_cluster_sampler
from .callbacks import Callback, LambdaCallback, StepLosses
from .config import ConfigError, TrainConfig, apply_preset, config_from_dict, parse_overrides, presets_for, set_value
from .data import DataInfo
from .device import native_bf16, pick_device, resolve_precision, seed_everything, setup_notebook
from .engine import Loop, fit, knn_monitor, train_step
from .eval import (ari, cluster_report, cluster_sizes, clustering_metrics, embed_umap, evaluate_features,
                   evaluate_method, hungarian_accuracy, kmeans_on_features, majority_accuracy,
                   hungarian_match, knn_accuracy, knn_predict, linear_probe, mutual_information, nmi,
                   plot_cluster_grid, plot_cluster_sizes, plot_curves, plot_embedding, plot_image_grid,
                   plot_umap)
from .methods import METHODS, ColourParams, EpochContext, Method, ViewParams, build_method, swapped_prediction_loss
from .passes import batched, batched_argmax
from .nce import (exact_instance_loss, exact_normalizer, init_memory_bank, monte_carlo_normalizer, nce_estimate_error,
                  nce_loss, nce_scores, proximal_term, sample_noise, update_memory_bank)
from .optim import LARS, lr_at, make_optimizer
from .runs import RunDir, evaluate_run, git_sha, load_run, method_from_checkpoint
from .interactive import (InteractiveFigure, sinkhorn_explorer, sinkhorn_grid, swav_codes_explorer, swav_codes_grid,
                          transport_explorer, transport_grid)
from .trained import Assignment, TrainedRun
from .imagesource import ImageSource
from .results import read_results, results_table, table_markdown, welch_df, welch_t
from .validation import validate
from .transport import (SinkhornResult, balanced_rounding, cluster_capacities, exact_transport, sela_labels,
                        sinkhorn, swav_codes)

__version__ = "0.1.0"

__all__ = [
    # set-up
    "setup_notebook", "pick_device", "seed_everything", "native_bf16", "resolve_precision",
    # data on the device
    "augment", "augment_batch", "AugmentConfig", "multi_crop", "to_float",
    # networks
    "build_backbone", "Backbone", "Sobel", "extract_features", "DATASET_STATS",
    # configuration and training
    "TrainConfig", "ConfigError", "apply_preset", "config_from_dict", "set_value", "parse_overrides", "presets_for",
    "build_method", "fit", "train_step", "Loop", "knn_monitor", "LARS", "make_optimizer", "lr_at", "validate",
    "DataInfo", "Callback", "LambdaCallback", "StepLosses", "batched", "batched_argmax",
    "METHODS", "Method", "EpochContext", "ViewParams", "ColourParams", "RunDir", "git_sha", "swapped_prediction_loss",
    "load_run", "evaluate_run", "method_from_checkpoint", "TrainedRun", "Assignment",
    # images that do not fit in memory, decoded by worker processes
    "ImageSource",
    "dist",
    # stored results of sweeps (chapter 07)
    "read_results", "results_table", "table_markdown", "welch_df", "welch_t",
    # optimal transport
    "sinkhorn", "SinkhornResult", "swav_codes", "sela_labels", "balanced_rounding", "cluster_capacities",
    "exact_transport",
    # instance discrimination (NCE, memory bank)
    "nce", "init_memory_bank", "update_memory_bank", "exact_instance_loss", "exact_normalizer", "sample_noise",
    "nce_scores", "monte_carlo_normalizer", "nce_loss", "proximal_term", "nce_estimate_error",
    # clustering
    "kmeans", "KMeansResult", "fit_pca", "PCA", "uniform_cluster_sampler",
    # evaluation
    "knn_accuracy", "knn_predict", "linear_probe", "evaluate_method", "evaluate_features", "kmeans_on_features",
    "nmi", "ari", "mutual_information", "majority_accuracy", "hungarian_accuracy", "hungarian_match", "cluster_report", "cluster_sizes", "clustering_metrics",
    "embed_umap", "plot_embedding", "plot_umap", "plot_image_grid", "plot_cluster_grid", "plot_curves",
    "plot_cluster_sizes",
    # figures you can move (chapters 02, 03, 05): a grid computed here, drawn by Vega-Lite
    "InteractiveFigure", "transport_explorer", "transport_grid", "sinkhorn_explorer", "sinkhorn_grid",
    "swav_codes_explorer", "swav_codes_grid",
]
