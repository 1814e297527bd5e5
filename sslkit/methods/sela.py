"""SeLa: self-labelling via simultaneous clustering and representation learning.

Asano, Rupprecht, Vedaldi, ICLR 2020. A backbone with T linear clustering heads of K
outputs each. Training alternates

1. cross-entropy of every head against its current labels (mean over heads), and
2. at ``num_relabels`` points spread evenly over the run (or every ``relabel_every``
   epochs: the paper's CIFAR runs relabel once per epoch), re-labelling the whole data set:
   for each head, Sinkhorn-Knopp on ``P^lambda`` where ``log P`` is the head's log-softmax
   averaged over ``label_views`` augmentations (0: the un-augmented images), then the
   argmax of the transport plan — an (approximately) equipartitioned labelling.

Labels start as a random equipartition, as in the paper's code; ``relabel_at_start``
replaces it at once by a first Sinkhorn pass on the random network (the lab preset does,
so a short run does not spend its first epoch on meaningless labels). The labels are a
buffer of the module, so they are saved and restored with the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import dist
from ..augment import augment, to_float
from ..config import ConfigError, opt
from ..eval.metrics import collapse_statistics, nmi
from ..passes import batched, batched_argmax
from ..transport import sela_labels
from .base import EpochContext, Method, ViewParams, hidden_layer


@dataclass
class SelaParams(ViewParams):
    num_clusters: int = opt(128, 'K (SeLa CIFAR: 128)')
    num_heads: int = opt(10, 'T (SeLa CIFAR: 10)')
    mlp_hidden: int = opt(0, '>0: a Linear-BN-ReLU layer of this width between backbone and heads')
    lam: float = opt(25.0, 'lambda: the plan is diag(a) P^lambda diag(b)')
    num_relabels: int = opt(5, 'Sinkhorn relabellings spread over the run (SeLa CIFAR: 400 in 400 epochs); '
                               'ignored when relabel_every > 0')
    relabel_every: int = opt(0, '>0: relabel at the start of every this many epochs, whatever the run\'s length '
                                '(1: once per epoch, as SeLa\'s CIFAR runs); 0: num_relabels spread over the run')
    relabel_at_start: bool = opt(False, 'also relabel before the first epoch, from the random network')
    label_views: int = opt(0, 'augmentations averaged for the labelling log-softmax (0: plain images)')
    sinkhorn_tol: float = opt(1e-3, 'stop Sinkhorn when the marginals are off by less than this')
    exact_equipartition: bool = opt(False, 'round the plan to exactly N/K per cluster instead of argmax')


class SeLa(Method):
    name = "sela"
    title = "SeLa"
    Params = SelaParams
    per_sample_buffers = ("labels",)

    def __init__(self, backbone, params: SelaParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        self.mlp, dim = hidden_layer(backbone.dim, params.mlp_hidden)
        self.heads = nn.ModuleList(nn.Linear(dim, params.num_clusters) for _ in range(params.num_heads))
        g = torch.Generator().manual_seed(0)
        init = torch.stack([(torch.arange(num_samples) % params.num_clusters)[torch.randperm(num_samples, generator=g)]
                            for _ in range(params.num_heads)])
        self.register_buffer("labels", init)  # (T, N)
        self.aug = params.view_recipe()

    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        p = cfg.params
        if p.relabel_every < 0 or p.num_relabels < 0:
            raise ConfigError("SeLa: --params.relabel_every and --params.num_relabels must be >= 0 "
                              "(relabel_every=1: once per epoch, as the paper's CIFAR runs)")
        if p.num_clusters < 2:
            raise ConfigError(f"SeLa: --params.num_clusters={p.num_clusters}: a labelling needs at least 2 clusters "
                              "(one cluster is the trivial solution the method exists to avoid; the paper uses 128)")
        if p.num_heads < 1:
            raise ConfigError(f"SeLa: --params.num_heads={p.num_heads}: use at least 1 head (the paper uses 10)")
        if not 0 < p.lam < float("inf"):
            raise ConfigError(f"SeLa: --params.lam={p.lam}: lambda must be a positive number (the paper uses 10-25)")
        if p.label_views < 0 or p.mlp_hidden < 0 or not p.sinkhorn_tol > 0:
            raise ConfigError("SeLa: --params.label_views and --params.mlp_hidden must be >= 0 and "
                              "--params.sinkhorn_tol > 0")
        if data is not None and p.num_clusters > data.num_samples:
            raise ConfigError(f"SeLa: --params.num_clusters={p.num_clusters} is more than the {data.num_samples} "
                              "training images; use fewer clusters")

    @classmethod
    def cluster_count(cls, params) -> int:
        return params.num_clusters

    @classmethod
    def smoke_params(cls, params, batch_size: int):
        return replace(params, num_clusters=min(params.num_clusters, 8), num_heads=min(params.num_heads, 2),
                       mlp_hidden=min(params.mlp_hidden, 64))

    # -- the schedule of relabellings ---------------------------------------------------
    def relabel_epochs(self, epochs: int) -> list[int]:
        """Epochs (0-based) at whose start the data set is relabelled: after the first epoch
        (which trains on the initial random equipartition, as in the paper's code) every
        ``relabel_every`` epochs, or ``num_relabels`` times evenly spread; plus epoch 0 with
        ``relabel_at_start``."""
        if self.params.relabel_every > 0:
            epochs_ = set(range(self.params.relabel_every, epochs, self.params.relabel_every))
        else:
            n = min(self.params.num_relabels, max(0, epochs - 1))
            epochs_ = {round(1 + i * (epochs - 1) / n) for i in range(n)} if n else set()
        return sorted(epochs_ | ({0} if self.params.relabel_at_start else set()))

    # -- step 2: labels by optimal transport -------------------------------------------------
    @torch.no_grad()
    def label_features(self, images: torch.Tensor, batch_size: int = 512) -> list[torch.Tensor]:
        """The heads' input for every image (eval mode), one (N, D) tensor per labelling view."""
        prepare = (lambda x: augment(x, self.aug)) if self.params.label_views > 0 else to_float
        return [batched(lambda x: self.mlp(self.backbone(x)).float(), images, module=self, batch_size=batch_size,
                        prepare=prepare)
                for _ in range(max(1, self.params.label_views))]

    @torch.no_grad()
    def head_log_probs(self, feats: list[torch.Tensor], head: int) -> torch.Tensor:
        """(N, K) log-softmax of one head, averaged over the labelling views.

        One head at a time keeps memory at N x K (SeLa on ImageNet: 1.28M x 3000 per head).
        """
        h = self.heads[head]
        return sum(F.log_softmax(h(f).float(), 1) for f in feats) / len(feats)

    @torch.no_grad()
    def relabel(self, images: torch.Tensor) -> dict:
        """Sinkhorn labels for every head. Under ``torch.distributed`` every process scores its
        own share of the images, Sinkhorn reduces its column sums across processes (the same
        plan as one process holding all rows), and the labels are gathered."""
        t0 = time.time()
        start, end = dist.shard_range(len(images))
        feats = self.label_features(images[start:end])
        old = self.labels[0].clone()
        iters, errs = [], []
        for t in range(self.params.num_heads):
            self.labels[t], res = sela_labels(self.head_log_probs(feats, t), self.params.lam,
                                              tol=self.params.sinkhorn_tol, max_iters=1000,
                                              exact=self.params.exact_equipartition)
            iters.append(res.iterations)
            errs.append(res.marginal_error)
            del res
        return {"relabel_time_s": time.time() - t0, "sinkhorn_iters": sum(iters) / len(iters),
                "sinkhorn_error": max(errs), "nmi_prev": nmi(old.cpu(), self.labels[0].cpu()),
                **collapse_statistics(self.labels[0].cpu(), self.params.num_clusters)}

    def pseudo_labels(self) -> torch.Tensor:
        return self.labels[0]

    def predict_clusters(self, images):
        return [batched_argmax(lambda x, h=h: h(self.mlp(self.backbone(x))), images, module=self) for h in self.heads]

    def assign_features(self, features):
        """Every head's cluster (its arg-max) and its softmax probability."""
        h = self.mlp(features)
        return [tuple(F.softmax(head(h).float(), 1).max(1))[::-1] for head in self.heads]

    def on_epoch_start(self, ctx: EpochContext) -> dict:
        if ctx.epoch in self.relabel_epochs(ctx.cfg.epochs):
            return self.relabel(ctx.images)
        return {}

    # -- step 1: cross-entropy against the labels ------------------------------------------
    def training_step(self, images, indices, labels=None):
        f = self.mlp(self.backbone(augment(images, self.aug)))
        targets = self.labels[:, indices]
        loss = sum(F.cross_entropy(h(f), targets[t]) for t, h in enumerate(self.heads)) / len(self.heads)
        return loss, {}


SeLa.add_preset(
    "lab", source="this book: sized for about four minutes on a 2-core CPU (chapter 03); a constant rate, as the "
                  "paper's schedule before its first decay (single lab runs, 24 epochs: 44.9 % kNN at a constant 0.1, "
                  "43.3 % at 0.3; 16 epochs with a cosine decay: 43.7 %; 48 epochs: 48.8 % constant, 47.0 % with the "
                  "paper's two x0.1 decays at 60 and 80 % of the run; K=128, the paper's CIFAR K: 48.7 % kNN and "
                  "60.6 % linear at 48 epochs, seed 0, on an AMD EPYC without AMX where K=30 trains about 15 % faster; "
                  "K=30's stored seed-0 run, on the AMX Xeon: 48.85 % and 59.65 %)",
    description="ConvNet + 512-wide hidden layer on the CIFAR-10 lab subset; K=30 (3x the classes), "
                "4 heads, relabelled before every epoch (the first from the random network), constant rate",
    backbone="convnet", subset="lab", epochs=48, knn_every=4, precision="auto", batch_size=128, lr=0.1,
    weight_decay=5e-4, schedule="constant",
    **{"params.num_clusters": 30, "params.num_heads": 4, "params.relabel_every": 1, "params.lam": 25.0,
       "params.mlp_hidden": 512, "params.sinkhorn_tol": 1e-2, "params.relabel_at_start": True})
_SELA_CIFAR = ("Asano et al., ICLR 2020, CIFAR experiments; official code yukimasano/self-label scripts/cifar.sh "
               "(AlexNet, K=128, 10 heads, 400 epochs, 400 SK optimisations, batch 128, lr 0.03) with cifar.py's "
               "defaults for what the script leaves unset (lambda 10, SGD momentum 0.9, wd 5e-4, the rate x0.1 at "
               "epochs 240 and 320 for a 400-epoch run)")
for _ds in ("cifar10", "cifar100", "svhn"):
    SeLa.add_preset(
        _ds, source=_SELA_CIFAR if _ds == "cifar10" else f"as the cifar10 preset ({_SELA_CIFAR})",
        description=f"AlexNet on full {_ds}, 400 epochs, K=128 x 10 heads",
        dataset=_ds, backbone="alexnet", subset="full", epochs=400, batch_size=128, lr=0.03, lr_batch_size=128,
        weight_decay=5e-4, momentum=0.9, schedule="step", lr_milestones=(240, 320), lr_gamma=0.1,
        **{"params.num_clusters": 128, "params.num_heads": 10, "params.num_relabels": 400, "params.lam": 10.0})
SeLa.add_preset(
    "imagenet",
    source="Asano et al., ICLR 2020, ImageNet with AlexNet (SeLa [3k x 10]); official code yukimasano/self-label "
           "scripts/alexnet.sh (AlexNet, K=3000, 10 heads, batch 256, 400 epochs, 100 label optimisations, "
           "augmentation level 3 for training and labelling) with main.py's defaults for what the script leaves unset "
           "(AlexNet 'big' 96-256-384-384-256 with batch norm and two 4096-wide layers before the heads, SGD lr 0.05, "
           "momentum 0.9, weight decay 1e-5, the rate x0.1 every 150 epochs and 0.05 x 1e-3 from epoch 350, lambda 25) "
           "and data.py's level 3 (RandomResizedCrop(224), RandomGrayscale(0.2), ColorJitter(0.4, 0.4, 0.4, 0.4), "
           "flip). Here: the convolutions' output is pooled globally into one 4096-wide layer (the code flattens "
           "6x6 into two), the relabellings are spread evenly (the code: quadratically), the jitter's hue is 0.1",
    description="AlexNet on ImageNet at 224 px, K=3000 x 10 heads, 400 epochs, batch 256 (kNN monitor every 10 "
                "epochs on 50 images per class)",
    dataset="imagenet", subset="full", image_size=224, backbone="alexnet_big", epochs=400, batch_size=256, lr=0.05,
    lr_batch_size=256, momentum=0.9, weight_decay=1e-5, schedule="step", lr_milestones=(150, 300, 350), lr_gamma=0.1,
    knn_every=10, eval_subset="50",
    **{"params.num_clusters": 3000, "params.num_heads": 10, "params.num_relabels": 100, "params.lam": 25.0,
       "params.mlp_hidden": 4096, "params.label_views": 1, "params.crop_scale_min": 0.08,
       "params.jitter_strength": 0.5, "params.gray_p": 0.2})
