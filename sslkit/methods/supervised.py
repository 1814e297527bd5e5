"""Supervised training with cross-entropy: the ceiling every chapter compares with.

Augmentation is the classic CIFAR recipe (reflect-pad by 4, random crop of the image's side,
horizontal flip), or with ``crop="resized"`` the ImageNet one (a random-resized crop covering
8-100 % of the image, horizontal flip). It uses the labels, which no self-supervised method
in this book does.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace

import torch.nn as nn
import torch.nn.functional as F

from ..augment import horizontal_flip, random_crop_with_padding, random_resized_crop, to_float
from ..config import ConfigError, opt
from .base import Method


@dataclass
class SupervisedParams:
    num_classes: int = opt(0, 'outputs of the classifier: the classes of the labelled training set (0: as many as '
                              'the data has)')
    label_smoothing: float = opt(0.0, 'cross-entropy label smoothing')
    padding: int = opt(4, 'pixels of padding before the random crop (crop=pad)')
    crop: typing.Literal["pad", "resized"] = opt("pad", 'pad: reflect-pad and crop back (the CIFAR recipe) | '
                                                        'resized: random-resized crop, scale 0.08-1 (the ImageNet one)')


class Supervised(Method):
    name = "supervised"
    title = "supervised (labels: the ceiling)"
    uses_labels = True
    Params = SupervisedParams
    resolved_from_data = ("num_classes",)

    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        p = cfg.params
        if p.num_classes < 0 or p.padding < 0 or not 0 <= p.label_smoothing < 1:
            raise ConfigError("supervised: --params.num_classes and --params.padding must be >= 0 and "
                              "--params.label_smoothing in [0, 1)")
        if data is None:
            return
        if not data.labelled:
            raise ConfigError(f"--method=supervised trains on the labels, and {data.name or 'this data set'} has none "
                              "(a folder of images without class folders): choose a self-supervised method")
        if p.num_classes and p.num_classes != data.num_classes:
            raise ConfigError(f"--params.num_classes={p.num_classes} but {data.name or 'the data'} has "
                              f"{data.num_classes} classes; pass --params.num_classes={data.num_classes} (or 0)")

    @classmethod
    def resolve_params(cls, params, data):
        return replace(params, num_classes=params.num_classes or data.num_classes) if data.labelled else params

    def __init__(self, backbone, params: SupervisedParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        if params.num_classes < 1:
            raise ConfigError("supervised: the number of classes is not known: build the method with the data "
                              "(sk.build_method(cfg, data)) or set --params.num_classes")
        self.head = nn.Linear(backbone.dim, params.num_classes)

    def training_step(self, images, indices, labels):
        x = to_float(images)
        if self.params.crop == "resized":
            x = random_resized_crop(x, x.shape[-1], (0.08, 1.0))  # flips half of them too
        else:
            x = horizontal_flip(random_crop_with_padding(x, self.params.padding))
        logits = self.head(self.backbone(x))
        loss = F.cross_entropy(logits, labels, label_smoothing=self.params.label_smoothing)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"train_acc": 100 * acc.detach()}


Supervised.add_preset("lab", source="this book: the same ConvNet and about the same four minutes on a 2-core CPU "
                                     "as the self-supervised lab presets (chapter 00)",
                description="ConvNet on the CIFAR lab subset, trained on the labels",
                backbone="convnet", subset="lab", epochs=80, knn_every=10, precision="auto", batch_size=128, lr=0.05,
                weight_decay=5e-4)
_RECIPE = ("the standard CIFAR ResNet-18 recipe of kuangliu/pytorch-cifar main.py: batch 128, SGD lr 0.1, "
           "momentum 0.9, wd 5e-4, cosine over 200 epochs")
for _ds, _classes, _epochs in (("cifar10", 10, 200), ("cifar100", 100, 200), ("svhn", 10, 40)):
    Supervised.add_preset(_ds,
                    source=_RECIPE if _ds != "svhn" else f"{_RECIPE}, shortened to 40 epochs (SVHN converges faster)",
                    description=f"ResNet-18 on full {_ds}", dataset=_ds, backbone="resnet18", subset="full",
                    epochs=_epochs, batch_size=128, lr=0.1, lr_batch_size=128, momentum=0.9, weight_decay=5e-4,
                    schedule="cosine", **{"params.num_classes": _classes})
Supervised.add_preset(
    "imagenet",
    source="the standard ImageNet ResNet-50 recipe of pytorch/examples imagenet/main.py run with -a resnet50 (He et "
           "al., CVPR 2016): batch 256, SGD lr 0.1, momentum 0.9, weight decay 1e-4, 90 epochs, the rate x0.1 every "
           "30 epochs; RandomResizedCrop(224) and flip",
    description="ResNet-50 on ImageNet at 224 px, 90 epochs, batch 256",
    dataset="imagenet", subset="full", image_size=224, backbone="resnet50", epochs=90, batch_size=256, lr=0.1,
    lr_batch_size=256, momentum=0.9, weight_decay=1e-4, schedule="step", lr_milestones=(30, 60), lr_gamma=0.1,
    knn_every=10, eval_subset="50", **{"params.num_classes": 1000, "params.crop": "resized"})
