"""NPID: non-parametric instance discrimination with an NCE memory bank.

Wu, Xiong, Yu, Lin, CVPR 2018. The backbone's features go through a linear layer to
``dim`` (128) dimensions and are L2-normalised; every training image has an entry in a
memory bank of unit vectors. Each step

1. scores the batch's features against the bank: either the exact non-parametric softmax
   over all N instances (``loss="softmax"``, for small N) or NCE with ``m`` uniform noise
   samples and a normaliser Z fixed by Monte Carlo on the first batch (``loss="nce"``);
2. optionally adds the proximal term ``lambda * ||f_i - v_i||^2`` (``proximal``);
3. after the optimiser step, writes the features into the bank with momentum and
   re-normalises (``sslkit.nce.update_memory_bank``).

The bank starts as random unit vectors (the paper) or, with ``bank_init="features"``, as
the untrained network's embeddings of the un-augmented images: then the first epoch pulls
each view towards its own image instead of towards a random direction, and the Monte-Carlo
Z is estimated on realistic similarities (chapter 06 shows both). The bank and Z are
buffers, so checkpoints carry them. ``monitor`` runs the paper's
weighted kNN with the bank as the training features.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import augment
from ..config import opt, ConfigError
from ..eval.knn import knn_accuracy
from ..nce import (exact_instance_loss, init_memory_bank, monte_carlo_normalizer, nce_loss, nce_scores,
                   proximal_term, sample_noise, update_memory_bank)
from ..passes import batched
from .base import EpochContext, Method, ViewParams


@dataclass
class NpidParams(ViewParams):
    dim: int = opt(128, 'embedding / bank dimension (paper: 128)')
    loss: typing.Literal["nce", "softmax"] = opt("nce", 'nce | softmax (exact, O(N) per image)')
    num_noise: int = opt(4096, 'm, noise samples per image (paper: 4096)')
    shared_noise: bool = opt(False, 'one set of m noise samples per batch (cheaper on CPU) instead of per image')
    temperature: float = opt(0.07, 'tau (paper: 0.07)')
    bank_momentum: float = opt(0.5, 'v <- normalize(mom * v + (1 - mom) * f) (paper: 0.5)')
    proximal: float = opt(0.0, 'lambda of the proximal term (0: off)')
    head_bn: bool = opt(True, 'batch-normalise the embedding before L2 (centres it; see chapter 06)')
    bank_init: typing.Literal["random", "features"] = opt("random", 'random (the paper) | features (one pass of the untrained network, no augmentation)')


class NPID(Method):
    name = "npid"
    title = "NPID (instance discrimination)"
    Params = NpidParams
    per_sample_buffers = ("bank",)

    def __init__(self, backbone, params: NpidParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        self.embed_head = nn.Sequential(nn.Linear(backbone.dim, params.dim),
                                        *([nn.BatchNorm1d(params.dim)] if params.head_bn else []))
        g = torch.Generator().manual_seed(0)
        self.register_buffer("bank", init_memory_bank(num_samples, params.dim, generator=g))
        self.register_buffer("z", torch.tensor(-1.0))  # NCE normaliser; < 0 until estimated
        self.register_buffer("bank_ready", torch.tensor(params.bank_init == "random"))
        self.aug = params.view_recipe()
        self._pending: tuple | None = None  # (indices, features) to write after the optimiser step
        self._z_fixed = False  # z known to be estimated (read once per epoch, not per step)

    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        """Ranges the types do not say (the config already checked the choices of loss and bank_init)."""
        p = cfg.params
        if p.loss == "nce" and p.num_noise < 1:
            raise ConfigError("NPID: --params.num_noise must be at least 1 (the paper uses 4096)")
        if not 0.0 <= p.bank_momentum < 1.0:
            raise ConfigError("NPID: --params.bank_momentum must be in [0, 1) (the paper uses 0.5)")
        if not 0 < p.temperature < float("inf") or p.dim < 1 or not 0 <= p.proximal < float("inf"):
            raise ConfigError("NPID: --params.temperature must be a positive number, --params.dim at least 1 and "
                              "--params.proximal >= 0 (the paper: 0.07, 128)")
        if data is not None and data.num_samples < 2:
            raise ConfigError("NPID: instance discrimination needs at least 2 training images")

    @classmethod
    def smoke_params(cls, params, batch_size: int):
        return replace(params, num_noise=min(params.num_noise, 64), dim=min(params.dim, 32))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed_head(self.backbone(x)), dim=1)

    @torch.no_grad()
    def init_bank_from_features(self, images: torch.Tensor, batch_size: int = 256) -> None:
        """Fill the bank with the current network's embeddings of the un-augmented images
        (batch statistics in the normalisation layers, as during training)."""
        self.bank.copy_(batched(lambda x: self.embed(x).float(), images, module=self, train=True,
                                batch_size=batch_size))
        self.bank_ready.fill_(True)

    def on_epoch_start(self, ctx: EpochContext) -> dict:
        if not bool(self.bank_ready):
            self.init_bank_from_features(ctx.images)
        self._z_fixed = False  # a checkpoint may have been loaded since: look at z again
        return {}

    def training_step(self, images, indices, labels=None):
        f = self.embed(augment(images, self.aug)).float()
        p = self.params
        logs = {}
        if p.loss == "softmax":
            loss = exact_instance_loss(f, indices, self.bank, p.temperature)
        else:
            noise = sample_noise(len(f), p.num_noise, self.num_samples, f.device, shared=p.shared_noise)
            scores = nce_scores(f, indices, noise, self.bank, p.temperature)
            if not self._z_fixed:  # estimated once, on the first batch, then fixed
                if float(self.z) < 0:
                    self.z.fill_(monte_carlo_normalizer(scores[:, 1:], self.num_samples))
                self._z_fixed = True  # no host sync for it in later steps
            loss = nce_loss(scores, self.z, self.num_samples)
            logs["nce_z"] = self.z.detach()
        if p.proximal > 0:
            prox = proximal_term(f, self.bank[indices])
            loss = loss + p.proximal * prox
            logs["proximal"] = prox.detach()
        self._pending = (indices, f.detach())
        return loss, logs

    def on_step_end(self, ctx: EpochContext) -> None:
        if self._pending is not None:
            update_memory_bank(self.bank, *self._pending, momentum=self.params.bank_momentum)
            self._pending = None

    @torch.no_grad()
    def monitor(self, eval_data, cfg) -> dict:
        """Weighted kNN (k, tau from the config) with the memory bank as the training features."""
        train_images, train_labels, test_images, test_labels = eval_data
        if len(train_labels) != len(self.bank):
            return {}
        dev = self.bank.device
        feats = batched(self.embed, test_images, module=self)
        return {"bank_knn_acc": knn_accuracy(self.bank, train_labels.to(dev), feats, test_labels.to(dev),
                                             k=cfg.knn_k, temperature=cfg.knn_temperature)}


NPID.add_preset(
    "lab", source="this book: sized for about four minutes on a 2-core CPU (chapter 06); single lab runs: lr 0.24 "
                  "45.6 % kNN at 16 epochs (0.06: 45.2 %), 50.2 % at 40 epochs, 53.1 % at 60, 53.9 % at 80 (235 s)",
    description="ConvNet on the CIFAR-10 lab subset, 128-d bank filled from the untrained network, NCE with "
                "m=4096 noise samples shared by each batch, tau 0.07, momentum 0.5",
    backbone="convnet", subset="lab", epochs=80, knn_every=8, precision="auto", batch_size=128, lr=0.24,
    weight_decay=5e-4,
    **{"params.dim": 128, "params.num_noise": 4096, "params.temperature": 0.07, "params.bank_momentum": 0.5,
       "params.shared_noise": True, "params.bank_init": "features"})
_PAPER = ("Wu et al., CVPR 2018 (128-d features, m=4096 noise samples, bank momentum 0.5; CIFAR-10 with "
          "ResNet-18) and the official code zhirongw/lemniscate.pytorch cifar.py (batch 128, SGD lr 0.03, momentum "
          "0.9, wd 5e-4, 200 epochs, the rate x0.1 at epochs 120 and 160, NCE temperature 0.1)")
for _ds in ("cifar10", "cifar100", "svhn"):
    NPID.add_preset(
        _ds, source=_PAPER, description=f"CIFAR ResNet-18 on full {_ds}, 200 epochs",
        dataset=_ds, backbone="resnet18", subset="full", epochs=200, batch_size=128, lr=0.03, lr_batch_size=128,
        weight_decay=5e-4, momentum=0.9, schedule="step", lr_milestones=(120, 160), lr_gamma=0.1,
        **{"params.dim": 128, "params.num_noise": 4096, "params.temperature": 0.1, "params.bank_momentum": 0.5})
NPID.add_preset(
    "imagenet",
    source="Wu et al., CVPR 2018, ImageNet with ResNet-50 (Table 2: 54.0 % linear top-1; the official code's "
           "default is ResNet-18); official code zhirongw/lemniscate.pytorch main.py (batch 256, SGD lr 0.03, "
           "momentum 0.9, weight decay 1e-4, 200 epochs, the rate x0.1 from epoch 120 and x0.01 from 160, 128-d "
           "features L2-normalised without batch norm, m=4096 noise samples, temperature 0.07, bank momentum 0.5, "
           "a random bank; RandomResizedCrop(224, scale (0.2, 1)), RandomGrayscale(0.2), ColorJitter(0.4, 0.4, 0.4, "
           "0.4), flip). Here: the jitter's hue is 0.1",
    description="ResNet-50 on ImageNet at 224 px, 128-d bank, NCE with m=4096, 200 epochs, batch 256 (kNN monitor "
                "every 10 epochs on 50 images per class)",
    dataset="imagenet", subset="full", image_size=224, backbone="resnet50", epochs=200, batch_size=256, lr=0.03,
    lr_batch_size=256, momentum=0.9, weight_decay=1e-4, schedule="step", lr_milestones=(120, 160), lr_gamma=0.1,
    knn_every=10, eval_subset="50",
    **{"params.dim": 128, "params.loss": "nce", "params.num_noise": 4096, "params.temperature": 0.07,
       "params.bank_momentum": 0.5, "params.head_bn": False, "params.bank_init": "random",
       "params.crop_scale_min": 0.2, "params.jitter_strength": 0.5, "params.gray_p": 0.2})
