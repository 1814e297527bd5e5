"""Batched image augmentations on tensors, the same code on CPU and GPU.

Every function takes a float batch ``x`` of shape (B, 3, H, W) in [0, 1] on any device and
draws an independent random transformation per image from torch's global generator, so
``sslkit.seed_everything`` makes them reproducible. There is no per-image Python or PIL
work: a whole batch is one ``grid_sample`` (crop, resize, flip) plus a few tensor ops.

The parameters follow torchvision's ``RandomResizedCrop``, ``ColorJitter``,
``RandomGrayscale`` and ``GaussianBlur``. Two documented differences: the jitter
operations are applied in a fixed order (brightness, contrast, saturation, hue) rather
than a random one, and hue is rotated in YIQ space (a linear approximation of the HSV
hue shift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,3,H,W) in [0, 255] to float32 in [0, 1] (floats are passed through)."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def _uniform(n: int, lo: float, hi: float, device) -> torch.Tensor:
    return torch.rand(n, device=device) * (hi - lo) + lo


def _bernoulli(n: int, p: float, device) -> torch.Tensor:
    return torch.rand(n, device=device) < p


def random_resized_crop(x: torch.Tensor, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        flip_p: float = 0.5) -> torch.Tensor:
    """A random crop of each image (area fraction in ``scale``, aspect ratio in ``ratio``),
    resized to ``size x size`` by bilinear sampling, flipped horizontally with ``flip_p``."""
    b, dev = x.shape[0], x.device
    area = _uniform(b, scale[0], scale[1], dev)
    log_r = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), dev)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)  # crop width / image width
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(b, device=dev) * 2 - 1) * (1 - w)  # centre in normalised coordinates
    cy = (torch.rand(b, device=dev) * 2 - 1) * (1 - h)
    sign = torch.where(_bernoulli(b, flip_p, dev), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (b, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def horizontal_flip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    mask = _bernoulli(x.shape[0], p, x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


def random_crop_with_padding(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """The classic CIFAR supervised augmentation: pad (reflect) and crop back at a random offset."""
    b, _, hgt, wid = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    ox = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    oy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    rows = (oy.view(b, 1) + torch.arange(hgt, device=x.device)).view(b, 1, hgt, 1)
    cols = (ox.view(b, 1) + torch.arange(wid, device=x.device)).view(b, 1, 1, wid)
    bidx = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    cidx = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[bidx, cidx, rows, cols]


def grayscale(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                 p: float = 0.8) -> torch.Tensor:
    """Per-image random brightness, contrast, saturation and hue, applied with probability ``p``."""
    b, dev = x.shape[0], x.device
    out = x
    if brightness:
        f = _uniform(b, max(0.0, 1 - brightness), 1 + brightness, dev).view(b, 1, 1, 1)
        out = out * f
    if contrast:
        f = _uniform(b, max(0.0, 1 - contrast), 1 + contrast, dev).view(b, 1, 1, 1)
        mean = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * f + mean
    if saturation:
        f = _uniform(b, max(0.0, 1 - saturation), 1 + saturation, dev).view(b, 1, 1, 1)
        gray = grayscale(out)
        out = (out - gray) * f + gray
    if hue:
        angle = _uniform(b, -hue, hue, dev) * 2 * math.pi
        out = _rotate_hue(out.clamp(0, 1), angle)
    out = out.clamp(0, 1)
    keep = ~_bernoulli(b, p, dev)
    return torch.where(keep.view(b, 1, 1, 1), x, out)


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate chroma by ``angle`` (radians, one per image) in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=x.device, dtype=x.dtype)
    from_yiq = torch.linalg.inv(to_yiq)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
    rot[:, 2, 1], rot[:, 2, 2] = sin, cos
    m = from_yiq @ rot @ to_yiq  # (B,3,3)
    return torch.einsum("bij,bjhw->bihw", m, x)


def random_grayscale(x: torch.Tensor, p: float = 0.2) -> torch.Tensor:
    mask = _bernoulli(x.shape[0], p, x.device).view(-1, 1, 1, 1)
    return torch.where(mask, grayscale(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float = 0.5, sigma=(0.1, 2.0), kernel_size: int | None = None) -> torch.Tensor:
    """Blur each selected image with its own sigma (separable Gaussian, reflect padding).

    ``kernel_size`` defaults to about a tenth of the image side (odd), as in SimCLR/SwAV.
    """
    b, c, hgt, wid = x.shape
    if kernel_size is None:
        kernel_size = max(3, int(0.1 * min(hgt, wid)) // 2 * 2 + 1)
    half = kernel_size // 2
    s = _uniform(b, sigma[0], sigma[1], x.device)
    t = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * s.view(-1, 1) ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, K)
    k = k.repeat_interleave(c, 0)  # (B*C, K)
    flat = F.pad(x.reshape(1, b * c, hgt, wid), (half, half, half, half), mode="reflect")
    flat = F.conv2d(flat, k.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(flat, k.view(b * c, 1, -1, 1), groups=b * c)
    blurred = flat.view(b, c, hgt, wid)
    mask = _bernoulli(b, p, x.device).view(-1, 1, 1, 1)
    return torch.where(mask, blurred, x)


@dataclass
class AugmentConfig:
    """One view's recipe (defaults: the SimCLR/SwAV recipe at CIFAR scale)."""

    size: int = 32
    scale: tuple = (0.2, 1.0)
    flip_p: float = 0.5
    jitter_strength: float = 0.5  # SimCLR's s: brightness/contrast/saturation 0.8s, hue 0.2s
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.0  # off for 32x32 CIFAR, as in the SimCLR CIFAR recipe


def augment(images: torch.Tensor, cfg: AugmentConfig | None = None) -> torch.Tensor:
    """One augmented view of every image: crop+resize+flip, colour jitter, grayscale, blur."""
    cfg = cfg or AugmentConfig()
    x = to_float(images)
    x = random_resized_crop(x, cfg.size, cfg.scale, flip_p=cfg.flip_p)
    s = cfg.jitter_strength
    if s > 0 and cfg.jitter_p > 0:
        x = color_jitter(x, 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=cfg.jitter_p)
    if cfg.gray_p > 0:
        x = random_grayscale(x, cfg.gray_p)
    if cfg.blur_p > 0:
        x = gaussian_blur(x, cfg.blur_p)
    return x


def multi_crop(images: torch.Tensor, n_global: int = 2, global_size: int = 32,
               global_scale=(0.14, 1.0), n_local: int = 0, local_size: int = 16,
               local_scale=(0.05, 0.14), base: AugmentConfig | None = None) -> list[torch.Tensor]:
    """SwAV's multi-crop: ``n_global`` full-resolution views, then ``n_local`` small ones.

    Returns a list of batches (one per view); views of one resolution can be concatenated
    along the batch dimension for one forward pass.
    """
    base = base or AugmentConfig()
    views = []
    for i in range(n_global + n_local):
        is_global = i < n_global
        cfg = AugmentConfig(**{**base.__dict__,
                               "size": global_size if is_global else local_size,
                               "scale": global_scale if is_global else local_scale})
        views.append(augment(images, cfg))
    return views
