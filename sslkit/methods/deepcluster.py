"""DeepCluster: k-means on the network's own features as pseudo-labels.

Caron, Bojanowski, Joulin, Douze, ECCV 2018. At the start of every epoch:

1. extract features of all images without augmentation (the output of the layer below the
   classifier: here the hidden layer ``mlp`` on top of the backbone, as AlexNet's fc7);
2. PCA-whiten them to ``pca_dim`` dimensions and L2-normalise;
3. k-means into ``num_clusters`` clusters (empty clusters re-seeded by splitting);
4. re-initialise the classifier head (and its optimiser state);

then train with cross-entropy on the cluster indices, drawing images uniformly over the
clusters so a large cluster cannot dominate. Optional Sobel input (grayscale + fixed
Sobel filters) removes colour as an easy cue, as in the paper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import dist
from ..augment import augment
from ..cluster import fit_pca, kmeans, uniform_cluster_sampler
from ..config import ConfigError, opt
from ..eval.metrics import collapse_statistics, nmi
from ..passes import batched, batched_argmax
from .base import EpochContext, Method, ViewParams, hidden_layer


@dataclass
class DeepClusterParams(ViewParams):
    num_clusters: int = opt(100, 'K (paper: 10,000 on ImageNet; more clusters than classes helps)')
    pca_dim: int = opt(64, 'paper: 256 (from 4096)')
    kmeans_iters: int = opt(20, 'Lloyd iterations per reclustering (stops earlier when no point moves)')
    mlp_hidden: int = opt(512, 'the feature layer below the classifier (0: cluster backbone features)')
    sobel: bool = opt(False, 'paper: True')
    uniform_sampling: bool = opt(True, "the safeguards, switchable for chapter 04's experiments")
    reseed_empty: bool = opt(True, "re-seed empty clusters by splitting a large one (paper's fix)")
    recluster_every: int = opt(1, 'epochs between reclusterings (the paper: 1, an epoch of 5,000 steps on '
                                  'ImageNet; the classifier is re-initialised at each)')


class DeepCluster(Method):
    name = "deepcluster"
    title = "DeepCluster"
    Params = DeepClusterParams
    per_sample_buffers = ("labels",)

    def __init__(self, backbone, params: DeepClusterParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        self.mlp, dim = hidden_layer(backbone.dim, params.mlp_hidden)
        self.head = nn.Linear(dim, params.num_clusters)
        self.register_buffer("labels", torch.full((num_samples,), -1, dtype=torch.long))
        # the last clustering's map from the feature layer to k-means' space and its centroids, so new
        # images are assigned by the method's own clustering (the nearest centroid), not the classifier
        d = min(params.pca_dim, dim)
        self.register_buffer("whiten_mean", torch.zeros(dim))
        self.register_buffer("whiten_matrix", torch.zeros(dim, d))
        self.register_buffer("centroids", torch.zeros(params.num_clusters, d))
        self.aug = params.view_recipe()
        self._gen = torch.Generator().manual_seed(0)
        self.epoch_started = 0  # the epoch of the last on_epoch_start

    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        p = cfg.params
        if p.num_clusters < 2:
            raise ConfigError(f"DeepCluster: --params.num_clusters={p.num_clusters}: k-means needs at least 2 clusters "
                              "(one cluster is the trivial solution; the paper over-clusters, 10x the classes)")
        if p.pca_dim < 1 or p.kmeans_iters < 1 or p.mlp_hidden < 0 or p.recluster_every < 1:
            raise ConfigError("DeepCluster: --params.pca_dim, --params.kmeans_iters and --params.recluster_every "
                              "must be at least 1 and --params.mlp_hidden >= 0")
        if data is not None and p.num_clusters > data.num_samples:
            raise ConfigError(f"DeepCluster: --params.num_clusters={p.num_clusters} is more than the "
                              f"{data.num_samples} training images to cluster; use fewer clusters")

    @classmethod
    def cluster_count(cls, params) -> int:
        return params.num_clusters

    @classmethod
    def backbone_options(cls, params) -> dict:
        return {"sobel": params.sobel}

    @classmethod
    def smoke_params(cls, params, batch_size: int):
        return replace(params, num_clusters=min(params.num_clusters, 8), pca_dim=min(params.pca_dim, 16),
                       mlp_hidden=min(params.mlp_hidden, 64))

    @torch.no_grad()
    def cluster_features(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """The feature layer's output for every image (eval mode, no augmentation)."""
        return batched(lambda x: self.mlp(self.backbone(x)).float(), images, module=self, batch_size=batch_size)

    @torch.no_grad()
    def recluster(self, images: torch.Tensor, seed: int = 0) -> dict:
        """Features, PCA-whitening, L2, k-means. Under ``torch.distributed`` every process
        embeds and clusters its own share of the images (PCA and k-means reduce across
        processes) and the labels are gathered, which equals one process doing it all."""
        t0 = time.time()
        start, end = dist.shard_range(len(images))
        feats = self.cluster_features(images[start:end])
        pca = fit_pca(feats, min(self.params.pca_dim, feats.shape[1]))
        x = pca.transform(feats)  # whitened and L2-normalised
        res = kmeans(x, self.params.num_clusters, iters=self.params.kmeans_iters, seed=seed,
                     reseed_empty=self.params.reseed_empty)
        old = self.labels.clone()
        labels = dist.gather_shards(res.labels, len(images))
        self.labels.copy_(labels)
        self.whiten_mean.copy_(pca.mean)
        self.whiten_matrix.copy_(pca.components / torch.sqrt(pca.variances + pca.eps))
        self.centroids.copy_(res.centroids)
        out = {"cluster_time_s": time.time() - t0, "kmeans_inertia": res.inertia,
               "empty_reseeded": res.empty_reseeded, **collapse_statistics(labels.cpu(), self.params.num_clusters)}
        if (old >= 0).all():
            out["nmi_prev"] = nmi(old.cpu(), labels.cpu())
        return out

    def pseudo_labels(self) -> torch.Tensor:
        return self.labels

    def centroid_scores(self, x: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """Minus the squared distance of each image's whitened, L2-normalised feature to each
        centroid of the last k-means (up to a constant per image): its argmax is the nearest one.
        ``hidden``: the feature layer's output for ``x``, when it is already computed."""
        hidden = self.mlp(self.backbone(x)) if hidden is None else hidden
        y = F.normalize((hidden.float() - self.whiten_mean) @ self.whiten_matrix, dim=1)
        return 2 * y @ self.centroids.t() - self.centroids.pow(2).sum(1)

    def assign_features(self, features):
        """The nearest centroid of the last k-means, and the probability that the classifier (trained on
        that clustering for the epoch that followed it) gives that cluster."""
        hidden = self.mlp(features)
        clusters = self.centroid_scores(None, hidden).argmax(1)
        p = F.softmax(self.head(hidden).float(), 1)
        return [(clusters, p.gather(1, clusters[:, None]).squeeze(1))]

    def predict_clusters(self, images):
        """The cluster of each image in the last k-means: its nearest centroid in the whitened space."""
        return [batched_argmax(self.centroid_scores, images, module=self)]

    def get_extra_state(self):
        return {"sampler_generator": self._gen.get_state()}  # saved in state_dict, so a resumed run samples alike

    def set_extra_state(self, state):
        self._gen.set_state(state["sampler_generator"])

    def reclusters_at(self, epoch: int) -> bool:
        """Whether the data set is reclustered at the start of ``epoch`` (0-based)."""
        return epoch % self.params.recluster_every == 0

    def on_epoch_start(self, ctx: EpochContext) -> dict:
        self.epoch_started = ctx.epoch
        if not self.reclusters_at(ctx.epoch):
            return {}
        info = self.recluster(ctx.images, seed=ctx.cfg.seed + ctx.epoch)
        self.head.reset_parameters()  # a fresh classifier for the new pseudo-labels
        return info

    def reinitialized_parameters(self) -> list:
        """The classifier, in the epochs that reclustered (the loop drops the old classifier's momentum)."""
        return list(self.head.parameters()) if self.reclusters_at(self.epoch_started) else []

    def sample_order(self, ctx: EpochContext) -> torch.Tensor:
        if self.params.uniform_sampling:
            return uniform_cluster_sampler(self.labels, ctx.num_samples, self._gen).to(ctx.device)
        return torch.randperm(ctx.num_samples, device=ctx.device)

    def training_step(self, images, indices, labels=None):
        logits = self.head(self.mlp(self.backbone(augment(images, self.aug))))
        return F.cross_entropy(logits, self.labels[indices]), {}


DeepCluster.add_preset(
    "lab", source="this book: sized for about four minutes on a 2-core CPU (chapter 04); the rate constant as in "
                  "the paper (single lab runs, 16 epochs: 46.0 % kNN at a constant 0.05, 42.8 % with a cosine decay; 48 "
                  "epochs: 46.8 %, and 47.5 % with the rate x0.1 from epoch 48 of 56, so no decay; PCA 256, the paper's: "
                  "46.8 % kNN and 57.75 % linear at seed 0 on an AMD EPYC without AMX, against the stored PCA-64 "
                  "seed-0 run's 46.8 % and 58.4 % on the AMX Xeon, so PCA 64 kept)",
    description="ConvNet + 512-wide feature layer on the CIFAR-10 lab subset; K=100, PCA 64, constant rate, "
                "reclustered before every epoch",
    backbone="convnet", subset="lab", epochs=48, knn_every=4, precision="auto", batch_size=128, lr=0.05,
    weight_decay=5e-4, schedule="constant",
    **{"params.num_clusters": 100, "params.pca_dim": 64})
DeepCluster.add_preset(
    "cifar10",
    source="Caron et al., ECCV 2018 (AlexNet with Sobel, PCA 256, SGD at a constant lr 0.05 -- the classifier "
           "is re-initialised every epoch, so the rate never decays --, momentum 0.9, wd 1e-5, batch 256, "
           "uniform sampling; official main.py defaults), K=100 for CIFAR-10 scale",
    backbone="alexnet", subset="full", epochs=200, batch_size=256, lr=0.05, weight_decay=1e-5, schedule="constant",
    **{"params.num_clusters": 100, "params.pca_dim": 256, "params.sobel": True, "params.mlp_hidden": 4096})
for _ds, _k in (("cifar100", 1000), ("svhn", 100)):
    DeepCluster.add_preset(
        _ds, source="as the cifar10 preset (Caron et al., ECCV 2018; official main.py defaults), "
                                   f"K={_k} (10x the classes, the paper's over-clustering)",
        dataset=_ds, backbone="alexnet", subset="full", epochs=200, batch_size=256, lr=0.05, weight_decay=1e-5,
        schedule="constant", **{"params.num_clusters": _k, "params.pca_dim": 256, "params.sobel": True, "params.mlp_hidden": 4096})
DeepCluster.add_preset(
    "imagenet",
    source="Caron et al., ECCV 2018, ImageNet; official code facebookresearch/deepcluster main.sh (AlexNet with "
           "Sobel, lr 0.05, weight decay 1e-5, K=10000) with main.py's defaults (batch 256, SGD momentum 0.9 at a "
           "constant rate, 200 epochs, a reclustering every epoch, sampling uniform over the clusters), clustering.py "
           "(PCA to 256 dimensions, whitening, L2 normalisation, k-means), models/alexnet.py (the '2012' widths "
           "96-256-384-384-256 with batch norm, two 4096-wide layers) and cluster_assign's RandomResizedCrop(224) "
           "+ flip, no colour jitter. Here: the convolutions' output is pooled globally into one 4096-wide layer",
    description="AlexNet with Sobel on ImageNet at 224 px, K=10000, PCA 256, 200 epochs, batch 256 (kNN monitor every "
                "10 epochs on 50 images per class)",
    dataset="imagenet", subset="full", image_size=224, backbone="alexnet_big", epochs=200, batch_size=256, lr=0.05,
    lr_batch_size=256, momentum=0.9, weight_decay=1e-5, schedule="constant", knn_every=10, eval_subset="50",
    **{"params.num_clusters": 10000, "params.pca_dim": 256, "params.sobel": True, "params.mlp_hidden": 4096,
       "params.crop_scale_min": 0.08, "params.jitter_strength": 0.0, "params.gray_p": 0.0})
