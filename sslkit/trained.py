"""A trained run, ready to use: ``sk.load_run(path)`` returns a ``TrainedRun``.

    run = sk.load_run("runs/swav-tiles")         # the run directory of `python -m sslkit.train`
    feats = run.features("new_tiles/")           # (N, D) backbone features of every image there
    found = run.assign("new_tiles/")             # each image's cluster and the method's confidence
    found.clusters[:, 0], found.confidence[:, 0], found.names

Images can be a folder or archive of images (at any depth; files that are not images or do
not open are skipped, and listed in ``.skipped`` of ``run.images(path)``), one image file, a
list of files or PIL images, or a uint8 tensor (N, 3, H, W); they are read as the run's training images were
(``image_size`` of the checkpoint: shorter side resized, centre square) and normalised as its
backbone normalises. ``TrainedRun`` still unpacks as ``method, config, metrics``.

The checkpoint says what this needs (format 3: ``model_info`` with the method, image size and
normalisation). Format 2 checkpoints (before ``--image_size`` existed) were all trained at 32
pixels and hold their normalisation in the weights, so they load too; older ones, and ones
from a newer sslkit, raise ``CheckpointError`` with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .runs import CheckpointError

KNOWN_FORMATS = (2, 3)


def checkpoint_format(state: dict, path) -> int:
    """The checkpoint's format, or ``CheckpointError`` for one this version cannot use."""
    fmt = state.get("sslkit_checkpoint") if isinstance(state, dict) else None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of sslkit.train (no model and config in it)")
    if fmt is None:
        raise CheckpointError(f"{path} was written by an earlier sslkit (checkpoint format 1): it does not record the "
                              "data it was trained on nor how its images were read; train it again with this version "
                              "(its weights alone: torch.load(path)['model'])")
    if fmt not in KNOWN_FORMATS:
        raise CheckpointError(f"{path} has checkpoint format {fmt}, which this sslkit does not know (it reads "
                              f"{', '.join(map(str, KNOWN_FORMATS))}): update sslkit")
    return fmt


@dataclass
class Assignment:
    """``clusters`` (N, heads) int64 and ``confidence`` (N, heads) float: each image's cluster in every
    clustering head of the method and the method's probability of it; ``names``: the images."""

    clusters: torch.Tensor
    confidence: torch.Tensor
    names: list

    @property
    def cluster(self) -> torch.Tensor:
        """The first head's clusters (N,)."""
        return self.clusters[:, 0]


class TrainedRun:
    """A checkpoint's method with what it was trained on, for using it on new images."""

    def __init__(self, method, config, metrics, path: Path, state: dict):
        self.method, self.config, self.metrics, self.path = method, config, metrics, Path(path)
        self.format = checkpoint_format(state, path)
        self.info = state.get("model_info") or {"method": config.method, "image_size": 32, "backbone": config.backbone}
        self.data = state.get("data") or {}
        self.epoch = state.get("epoch")

    def __iter__(self):  # method, config, metrics = sk.load_run(...)
        return iter((self.method, self.config, self.metrics))

    @property
    def image_size(self) -> int:
        return int(self.info.get("image_size") or self.config.image_size)

    @property
    def has_clusters(self) -> bool:
        return self.method.cluster_count(self.method.params) is not None

    def to(self, device) -> "TrainedRun":
        self.method.to(device)
        return self

    def images(self, images, workers: int = 0):
        """``images`` (see the module) as the uint8 tensor or ``ImageSource`` of the run's image size."""
        from labdata import FileImages, fit_square, scan_images

        from .imagesource import ArrayImages, ImageSource

        size = self.image_size
        if isinstance(images, ImageSource):
            return images
        if isinstance(images, (str, Path)):  # files that are not images or do not open are skipped: .skipped
            from labdata.files import probe

            files = scan_images(images, what="images")
            opens = [probe(files, i) for i in range(len(files))]
            if not any(opens):
                from labdata import LabDataError

                raise LabDataError(f"{files.root}: none of its {len(files)} image files opens as an image")
            skipped = files.skipped + [n for n, ok in zip(files.names, opens) if not ok]
            files = files.subset([i for i, ok in enumerate(opens) if ok])
            source = ImageSource(FileImages(files, size, skip_bad=True), size, workers, where=str(files.root))
            source.skipped = skipped
            return source
        if isinstance(images, (list, tuple)):
            import numpy as np
            from PIL import Image

            from labdata.imagefolder import to_rgb

            pil = [to_rgb(Image.open(x), str(x)) if isinstance(x, (str, Path)) else to_rgb(x, "image") for x in images]
            arrays = [np.asarray(fit_square(im, size)).transpose(2, 0, 1) for im in pil]
            return torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, 3, size, size, dtype=torch.uint8)
        if torch.is_tensor(images):
            if images.dtype != torch.uint8:
                images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
            if images.shape[-2:] != (size, size):
                return ImageSource(ArrayImages(images.cpu(), size), size).materialize()
            return images
        raise TypeError("images: a folder, archive or image file, a list of files or PIL images, or a uint8 tensor")

    def _device(self):
        p = next(self.method.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @torch.no_grad()
    def scan(self, images, batch_size: int = 256, workers: int = 0):
        """(features (N, D) on the CPU, assignment or None): one pass over ``images``."""
        from .passes import batched

        x = self.images(images, workers)
        method = self.method
        heads = []

        def step(batch):
            f = method.backbone(batch).float()
            out = method.assign_features(f)
            if out is not None:
                heads.append(out)
            return f.cpu()

        feats = batched(step, x, module=method, batch_size=batch_size, device=self._device())
        names = x.names if hasattr(x, "names") else [f"images[{i}]" for i in range(len(x))]
        if not self.has_clusters:
            return feats, None
        if heads:
            clusters = torch.cat([torch.stack([c for c, _ in h], 1).cpu() for h in heads])
            conf = torch.cat([torch.stack([p for _, p in h], 1).float().cpu() for h in heads])
        else:  # a method with clusters but no assign_features: its clusters, without a confidence
            clusters = torch.stack([c.cpu() for c in method.predict_clusters(x)], 1)
            conf = torch.full(clusters.shape, float("nan"))
        return feats, Assignment(clusters, conf, names)

    def features(self, images, batch_size: int = 256, workers: int = 0) -> torch.Tensor:
        """The backbone features (N, D) of ``images`` (on the CPU, float32), in eval mode."""
        return self.scan(images, batch_size, workers)[0]

    def assign(self, images, batch_size: int = 256, workers: int = 0) -> Assignment:
        """Each image's cluster in every clustering head and the method's confidence in it. A method
        without clusters of its own raises ``ValueError`` (cluster its ``features`` instead)."""
        if not self.has_clusters:
            raise ValueError(f"{self.method.name} has no clusters of its own: cluster its features instead, e.g. "
                             "sk.kmeans(run.features(images), K)")
        return self.scan(images, batch_size, workers)[1]

    def __repr__(self) -> str:
        return (f"TrainedRun({self.path}: {self.info.get('method')} {self.info.get('backbone', '')} at "
                f"{self.image_size}px, epoch {self.epoch}, checkpoint format {self.format})")
