"""Class-balanced, deterministic subsets.

A subset takes the same number of images from every class: the first ``n`` of a fixed
seeded permutation of that class's positions in the source order. The chosen images come
in a seeded shuffled order, classes interleaved, so that the first ``m`` images of a subset
are a fair sample of it (``train.images[:500]`` holds every class). The same source and
seed always give the same indices in the same order; the indices are returned with the
data and recorded in the cache folder.
"""

from __future__ import annotations

import torch

from .errors import LabDataError
from .registry import DatasetSpec


def per_class_count(spec: DatasetSpec | None, split: str, subset) -> int:
    """Images per class for a subset given by name ('lab', 'mini') or as an int."""
    if isinstance(subset, bool):
        raise LabDataError(f"subset must be a name or an int (images per class), not {subset!r}")
    if isinstance(subset, int):
        if subset <= 0:
            raise LabDataError(f"subset={subset}: the number of images per class must be positive")
        return subset
    named = spec.subsets if spec is not None else {}
    if subset not in named:
        raise LabDataError(f"unknown subset {subset!r}; use one of {sorted(named)} or an int "
                           "(images per class)")
    return named[subset][split]


def balanced_indices(labels: torch.Tensor, per_class: int, seed: int = 0, classes=None,
                     where: str = "") -> torch.Tensor:
    """Indices of ``per_class`` images of every class present in ``labels``, in a seeded shuffled order.
    ``classes`` (names) and ``where`` (the split) only make the error message precise."""
    labels = torch.as_tensor(labels)
    chosen = []
    for c in torch.unique(labels).tolist():
        pos = torch.nonzero(labels == c).flatten()
        if len(pos) < per_class:
            name = f"{classes[c]!r} ({c})" if classes is not None and c < len(classes) else str(c)
            split = f" of {where}" if where else ""
            raise LabDataError(f"class {name}{split} has only {len(pos)} images, fewer than the {per_class} "
                               f"per class the subset asks for; choose --subset={len(pos)} or fewer")
        g = torch.Generator().manual_seed(seed * 100_003 + int(c))
        chosen.append(pos[torch.randperm(len(pos), generator=g)[:per_class]])
    chosen = torch.sort(torch.cat(chosen)).values
    return chosen[torch.randperm(len(chosen), generator=torch.Generator().manual_seed(seed * 100_003 + 7919))]


def random_indices(n: int, count: int, seed: int = 0, where: str = "") -> torch.Tensor:
    """``count`` of ``n`` images without labels: the first ``count`` of a seeded permutation."""
    if count > n:
        raise LabDataError(f"{where or 'the data'} has {n} images, fewer than the {count} the subset asks for; "
                           f"choose --subset={n} or fewer")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + 7919))[:count]
