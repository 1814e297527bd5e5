"""Supervised training with cross-entropy: the ceiling every chapter compares with.

Augmentation is the classic CIFAR recipe (reflect-pad by 4, random 32x32 crop, horizontal
flip). It uses the labels, which no self-supervised method in this book does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

from ..augment import horizontal_flip, random_crop_with_padding, to_float
from ..config import register_preset
from .base import Method


@dataclass
class SupervisedParams:
    num_classes: int = 10  # classes of the labelled training set
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    padding: int = 4  # pixels of padding before the random 32x32 crop
class Supervised(Method):
    name = "supervised"
    uses_labels = True
    Params = SupervisedParams

    def __init__(self, backbone, params: SupervisedParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        self.head = nn.Linear(backbone.dim, params.num_classes)

    def training_step(self, images, indices, labels):
        x = horizontal_flip(random_crop_with_padding(to_float(images), self.params.padding))
        logits = self.head(self.backbone(x))
        loss = F.cross_entropy(logits, labels, label_smoothing=self.params.label_smoothing)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"train_acc": 100 * acc.detach()}


register_preset("supervised", "lab", source="this book: sized for a 2-core CPU (chapter 00)",
                description="ConvNet on the CIFAR lab subset, a few epochs",
                backbone="convnet", subset="lab", epochs=8, batch_size=128, lr=0.05, weight_decay=5e-4)
register_preset("supervised", "cifar10", source="standard CIFAR ResNet-18 recipe (SGD 0.1, cosine, wd 5e-4, 200 epochs)",
                description="ResNet-18 on full CIFAR-10",
                backbone="resnet18", subset="full", epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4)
register_preset("supervised", "cifar100", source="as the cifar10 preset (standard CIFAR ResNet-18 recipe)",
                description="ResNet-18 on full CIFAR-100 (fine labels)", dataset="cifar100",
                backbone="resnet18", subset="full", epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4,
                **{"params.num_classes": 100})
register_preset("supervised", "svhn", source="as the cifar10 preset, 40 epochs (SVHN converges faster)",
                description="ResNet-18 on full SVHN (train split)", dataset="svhn",
                backbone="resnet18", subset="full", epochs=40, batch_size=128, lr=0.1, weight_decay=5e-4)
