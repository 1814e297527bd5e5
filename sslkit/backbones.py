"""Backbones: float images in [0, 1] in, a feature vector per image out.

Every backbone starts with the per-channel normalisation of its dataset and ends with a
global pooling, so ``backbone(x)`` is (B, ``backbone.dim``) for any input resolution
(multi-crop feeds 32x32 and 16x16 views to the same network).

* ``convnet``: a small VGG-style ConvNet sized for 2-CPU labs (default widths 32-64-128-256).
* ``resnet18``: the CIFAR ResNet-18 (3x3 stem with stride 1, no max-pool), as in
  solo-learn, lightly and the SwAV/SimCLR CIFAR experiments.
* ``alexnet``: AlexNet with the channel widths of the "small" configuration in the SeLa
  code (models/alexnet.py: 64-192-384-256-256, itself from DeepCluster), with the
  first convolution adapted to 32x32 inputs (3x3, stride 1) and batch norm, the network
  the SeLa and DeepCluster CIFAR/SVHN experiments start from.
* ``resnet50``: torchvision's ResNet-50 (2048 features), the network of the ImageNet
  recipes of SwAV and NPID.
* ``alexnet_big``: AlexNet with the "big" widths of the SeLa code (96-256-384-384-256, the
  '2012' configuration of DeepCluster's models/alexnet.py), the ImageNet network of both.

The stem follows ``image_size``: below 96 px the CIFAR stem above (3x3 convolutions with
stride 1, no early down-sampling); from 96 px the standard ImageNet stem with its usual
strides: ResNet's 7x7 convolution with stride 2 and a 3x3 max-pool with stride 2, AlexNet's
11x11 convolution with stride 4 (padding 2), 5x5 in the second layer and 3x3 max-pools with
stride 2 (the SeLa and DeepCluster code's configuration), and for the ConvNet a 7x7 convolution
with stride 2 and a 3x3 max-pool with stride 2 before its layers. The channel widths do not
change, only the resolution the body works at.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# per-channel mean and std of the training sets (official arrays)
DATASET_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    # STL-10's training images (the statistics solo-learn and others normalise it with) and
    # ImageNet's (torchvision's), the usual choice for photographs: a folder of images gets these
    "stl10": ((0.4914, 0.4823, 0.4466), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

IMAGENET_STEM_FROM = 96  # image sides from which backbones take the ImageNet stem


def dataset_stats(dataset: str) -> tuple:
    """The (mean, std) a backbone normalises its input with: a registered data set's own, ImageNet's
    for a folder of images."""
    return DATASET_STATS.get(dataset, DATASET_STATS["imagenet"])


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Sobel(nn.Module):
    """DeepCluster's input layer: grayscale, then the two fixed Sobel filters (2 channels out)."""

    def __init__(self):
        super().__init__()
        gx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        weight = torch.stack([gx, gx.t()]).unsqueeze(1)  # (2,1,3,3)
        self.register_buffer("weight", weight)
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

    def forward(self, x):
        gray = (x * self.luma).sum(1, keepdim=True)
        return nn.functional.conv2d(gray, self.weight, padding=1)


class Backbone(nn.Module):
    """``stem`` (normalisation, optional Sobel) + ``body`` + global average pooling."""

    def __init__(self, body: nn.Module, dim: int, name: str, dataset: str = "cifar10", sobel: bool = False,
                 image_size: int = 32):
        super().__init__()
        mean, std = dataset_stats(dataset)
        self.image_size = image_size
        self.stem = nn.Sequential(Normalize(mean, std), *( [Sobel()] if sobel else []))
        self.body = body
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dim = dim
        self.name = name
        # Convolutions run on channels-last tensors (N, H, W, C in memory): oneDNN on a CPU and
        # cuDNN's tensor-core kernels compute convolutions in that layout, so NCHW tensors are
        # re-laid-out around every convolution, and max-pooling and batch norm vectorise over
        # the channels. Measured on a 2-core CPU (forward and backward, same values to fp32
        # rounding): the lab ConvNet 1.2x faster in fp32 and 1.4x under bf16 autocast, AlexNet
        # 1.2x and 1.3x, ResNet-18 1.1x.
        self.to(memory_format=torch.channels_last)

    # set by the training loop for --precision=bf16 off CUDA: the convolutions run under CPU
    # autocast while training, and the features come back in fp32 for the heads, the codes
    # and the losses (which stay in fp32); evaluation (eval mode) runs in fp32
    autocast_dtype: torch.dtype | None = None

    def forward(self, x):
        x = x.contiguous(memory_format=torch.channels_last)  # the layout the weights are in (see __init__)
        if self.autocast_dtype is not None and self.training:
            with torch.autocast(x.device.type, dtype=self.autocast_dtype):
                out = self.pool(self.body(self.stem(x))).flatten(1)
            return out.float()
        return self.pool(self.body(self.stem(x))).flatten(1)


def _conv_bn(cin, cout, k=3, stride=1, pad=1):
    return [nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _imagenet_stem(image_size: int) -> bool:
    return image_size >= IMAGENET_STEM_FROM


def convnet(widths=(32, 64, 128, 256), in_channels: int = 3, image_size: int = 32, **kw) -> Backbone:
    layers, cin = [], in_channels
    if _imagenet_stem(image_size):  # down-sample by 4 first, as ResNet's stem
        layers += _conv_bn(cin, widths[0], 7, 2, 3) + [nn.MaxPool2d(3, 2, 1)]
        cin = widths[0]
    for i, w in enumerate(widths):
        layers += _conv_bn(cin, w)
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        cin = w
    return Backbone(nn.Sequential(*layers), cin, "convnet", image_size=image_size, **kw)


def _resnet(factory, dim: int, name: str, in_channels: int, image_size: int, **kw) -> Backbone:
    net = factory(weights=None)
    if _imagenet_stem(image_size):  # torchvision's own stem: 7x7 stride 2, then max-pool stride 2
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        stem = [net.conv1, net.bn1, net.relu, net.maxpool]
    else:
        net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        stem = [net.conv1, net.bn1, net.relu]
    body = nn.Sequential(*stem, net.layer1, net.layer2, net.layer3, net.layer4)
    return Backbone(body, dim, name, image_size=image_size, **kw)


def resnet18(in_channels: int = 3, image_size: int = 32, **kw) -> Backbone:
    from torchvision.models import resnet18 as tv_resnet18

    return _resnet(tv_resnet18, 512, "resnet18", in_channels, image_size, **kw)


def resnet50(in_channels: int = 3, image_size: int = 32, **kw) -> Backbone:
    from torchvision.models import resnet50 as tv_resnet50

    return _resnet(tv_resnet50, 2048, "resnet50", in_channels, image_size, **kw)


ALEXNET_WIDTHS = {"small": (64, 192, 384, 256, 256), "big": (96, 256, 384, 384, 256)}


def _alexnet(widths, name: str, in_channels: int, image_size: int, **kw) -> Backbone:
    if _imagenet_stem(image_size):  # the SeLa / DeepCluster code's kernels, strides and 3x3/2 max-pools
        shapes, pool = [(11, 4, 2), "M", (5, 1, 2), "M", (3, 1, 1), (3, 1, 1), (3, 1, 1), "M"], (3, 2)
    else:
        shapes, pool = [(3, 1, 1), "M", (3, 1, 1), "M", (3, 1, 1), (3, 1, 1), (3, 1, 1), "M"], (2, 2)
    layers, cin, w = [], in_channels, iter(widths)
    for v in shapes:
        if v == "M":
            layers.append(nn.MaxPool2d(*pool))
        else:
            cout = next(w)
            layers += _conv_bn(cin, cout, *v)
            cin = cout
    return Backbone(nn.Sequential(*layers), cin, name, image_size=image_size, **kw)


def alexnet(in_channels: int = 3, image_size: int = 32, **kw) -> Backbone:
    return _alexnet(ALEXNET_WIDTHS["small"], "alexnet", in_channels, image_size, **kw)


def alexnet_big(in_channels: int = 3, image_size: int = 32, **kw) -> Backbone:
    return _alexnet(ALEXNET_WIDTHS["big"], "alexnet_big", in_channels, image_size, **kw)


BACKBONES = {"convnet": convnet, "resnet18": resnet18, "alexnet": alexnet, "resnet50": resnet50,
             "alexnet_big": alexnet_big}


def build_backbone(name: str, dataset: str = "cifar10", sobel: bool = False, image_size: int = 32,
                   **kw) -> Backbone:
    """A backbone by name (``BACKBONES``) for images of ``image_size`` pixels (the ImageNet stem from
    96 px); ``sobel`` adds DeepCluster's Sobel input; the normalisation is ``dataset``'s."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](in_channels=2 if sobel else 3, dataset=dataset, sobel=sobel, image_size=image_size, **kw)


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, batch_size: int = 512,
                     device=None, normalize: bool = False) -> torch.Tensor:
    """Features of ``images`` (uint8 or float, any device) in eval mode, in batches.

    Returns a float32 tensor on ``device`` (default: the model's device); ``normalize``
    L2-normalises each row.
    """
    from .passes import batched

    if device is None:
        tensor = next(model.parameters(), None)
        tensor = tensor if tensor is not None else next(model.buffers(), None)
        device = tensor.device if tensor is not None else images.device
    feats = batched(lambda x: model(x).float(), images, module=model, batch_size=batch_size, device=device)
    return nn.functional.normalize(feats, dim=1) if normalize else feats
