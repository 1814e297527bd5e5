"""A run's data: what ``--dataset`` / ``--subset`` name, loaded once, and what checks need of it.

``load_data(cfg)`` returns the training and evaluation splits as ``labdata.LabData``;
``DataInfo`` is what the config checks and the methods are sized by (images, classes);
``fingerprint`` identifies the training images, so a run never resumes on other data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class DataInfo:
    """What a run's checks need to know of its training data."""

    num_samples: int | None  # training images (None: not known before loading)
    num_classes: int | None = None  # None: no labels (or not known)
    image_size: int = 32
    name: str = ""

    @property
    def labelled(self) -> bool:
        return self.num_classes is not None


def subset_arg(value) -> int | str | None:
    """``--subset`` as labdata takes it: None for the whole split, a name, or images per class."""
    value = str(value)
    if value in ("", "full", "none", "None"):
        return None
    return int(value) if value.isdigit() else value


def describe(cfg) -> DataInfo:
    """What is known of ``cfg``'s data without reading it: a registered data set's classes (and,
    for a named or per-class subset, its size); nothing for a folder."""
    from labdata.registry import SPECS

    spec = SPECS.get(cfg.dataset)
    if spec is None:
        return DataInfo(None, None, name=cfg.dataset)
    subset = subset_arg(cfg.subset)
    per_class = spec.subsets.get(subset, {}).get("train") if isinstance(subset, str) else subset
    n = per_class * spec.num_classes if per_class else None
    return DataInfo(n, spec.num_classes, spec.image_size, spec.name)


def load_data(cfg):
    """The (train, test) ``labdata.LabData`` of ``cfg.dataset``: a registered data set (official
    files, or the image-folder copy its environment variable names), or the path of an image
    folder / tar of one, read at 32x32 pixels. Raises ``labdata.LabDataError`` with what to do."""
    import labdata

    subset = subset_arg(cfg.subset)
    if cfg.dataset in labdata.datasets():
        return tuple(labdata.load(cfg.dataset, split, subset=subset) for split in ("train", "test"))
    return tuple(labdata.load_image_folder(cfg.dataset, split, size=32, subset=subset, seed=0)
                 for split in ("train", "test"))


def info_of(train, name: str = "") -> DataInfo:
    """The ``DataInfo`` of a loaded training split."""
    labelled = getattr(train, "labels", None) is not None and len(getattr(train, "classes", []) or []) > 0
    return DataInfo(len(train.images), len(train.classes) if labelled else None, int(train.images.shape[-1]),
                    name or getattr(train, "name", ""))


def fingerprint(images: torch.Tensor, labels: torch.Tensor | None = None) -> str:
    """A short hash of the training images (and labels): two runs trained on the same data have the
    same one, whatever path the data was read from."""
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def dataset_slug(dataset: str) -> str:
    """``cifar10`` -> ``cifar10``; ``/data/pets.tar.gz`` -> ``pets`` (for the default run directory)."""
    name = Path(dataset).name
    for ext in (".tar.gz", ".tgz", ".tar"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    return name or "data"
