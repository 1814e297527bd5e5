"""Training images that are decoded when they are needed, in DataLoader worker processes.

The in-memory path keeps every image as one uint8 tensor on the device; an ``ImageSource``
stands in for that tensor when the images do not fit (``--stream``, or more than
``--stream_above_gb`` of them). It answers what the library asks of the tensor:

* ``len(source)``, ``source.shape`` (N, 3, S, S), ``source[i:j]`` (a source of those images,
  nothing decoded), ``source[index_tensor]`` (those images decoded, uint8);
* ``source.batches(batch_size)``: the images in order, decoded by ``workers`` processes a few
  batches ahead; ``sslkit.passes.batched`` (every offline pass: relabelling, k-means features,
  evaluation) reads a source this way;
* ``source.loader(index_lists)``: the batches of a training epoch, one list of positions per
  step (the method's ``sample_order``, each process's share of each global batch under
  torchrun), also decoded ahead by the workers.

Each image is decoded by the same function as in memory (``labdata.FileImages``: shorter side
to S, centre square; or ``ArrayImages`` for images already held as an array), so a streamed
run trains on exactly the images an in-memory run holds, in the same order; the workers take
no numbers from the global random stream, so the augmentations are the same too.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from labdata import LabDataError
from labdata.files import collate_decoded


def default_workers() -> int:
    """One decoding process per CPU core this process may use (under torchrun: its share), at most 16."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(16, per_process))


class ArrayImages(torch.utils.data.Dataset):
    """Image ``i`` of a uint8 array or tensor (N, 3, H, W), at ``size x size`` (``labdata.fit_square``
    when H, W differ from it): ``(i, uint8 (3, size, size))``."""

    def __init__(self, array, size: int):
        self.array, self.size = array, size

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int):
        x = self.array[i]
        x = x.numpy() if torch.is_tensor(x) else np.asarray(x)
        if x.shape[-2:] != (self.size, self.size):
            from PIL import Image

            from labdata import fit_square

            x = np.asarray(fit_square(Image.fromarray(np.ascontiguousarray(x.transpose(1, 2, 0))), self.size))
            x = x.transpose(2, 0, 1)
        return i, torch.from_numpy(np.ascontiguousarray(x))


class ImageSource:
    """N images of a dataset (``labdata.FileImages`` or ``ArrayImages``), decoded on demand at
    ``size x size`` by ``workers`` processes (0: this one). ``index``: the dataset's positions
    this source holds, in order; ``names``: where each image came from; ``fingerprint``: what
    identifies them (for checkpoints)."""

    dtype = torch.uint8
    device = torch.device("cpu")
    ndim = 4

    def __init__(self, dataset, size: int, workers: int = 0, index=None, names=None, fingerprint: str = "",
                 where: str = ""):
        self.dataset, self.size, self.workers = dataset, int(size), int(workers)
        self.index = torch.arange(len(dataset)) if index is None else torch.as_tensor(index, dtype=torch.long)
        self._names, self.fingerprint, self.where = names, fingerprint, where
        self.skipped: list[str] = []  # files of the source left out (not images, or not opening)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), 3, self.size, self.size))

    def size_bytes(self) -> int:
        return len(self) * 3 * self.size * self.size

    def _sub(self, index) -> "ImageSource":
        names = [self._names[int(i)] for i in index] if self._names is not None else None
        return ImageSource(self.dataset, self.size, self.workers, self.index[index], names, self.fingerprint,
                           self.where)

    @property
    def names(self) -> list[str]:
        if self._names is not None:
            return list(self._names)
        files = getattr(self.dataset, "files", None)
        return [files.names[int(i)] for i in self.index] if files is not None else \
            [f"{self.where}[{int(i)}]" for i in self.index]

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._sub(torch.arange(len(self))[key])
        if isinstance(key, int):
            return self[torch.tensor([key])][0]
        positions = torch.as_tensor(key, dtype=torch.long).cpu().reshape(-1)
        return next(iter(self.loader([positions.tolist()], workers=0)))

    def to(self, *args, **kwargs) -> "ImageSource":
        """Itself: a source stays where it is read from; its batches go to the device."""
        return self

    def loader(self, batches, workers: int | None = None, pin_memory: bool = False):
        """An iterator of uint8 tensors, one per list of positions in ``batches`` (positions in this
        source), decoded ahead by the worker processes. A file that does not decode stops it with
        a ``LabDataError`` naming the file."""
        workers = self.workers if workers is None else workers
        chunks = [[int(self.index[p]) for p in b] for b in batches]
        if not chunks:
            return iter(())
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=chunks, num_workers=workers, collate_fn=collate_decoded,
            pin_memory=pin_memory, prefetch_factor=4 if workers else None, persistent_workers=False,
            generator=torch.Generator())  # the DataLoader's seed comes from here, not the global random stream
        return self._checked(loader)

    def _checked(self, loader):
        for _, images, bad in loader:
            if bad:
                files = getattr(self.dataset, "files", None)
                where = files.where(bad[0]) if files is not None else f"image {bad[0]}"
                raise LabDataError(f"cannot decode {where} ({len(bad)} file(s) of this batch): replace or remove it, "
                                   "then run the same command again (a run resumes from its last checkpoint)")
            yield images

    def batches(self, batch_size: int = 512, pin_memory: bool = False):
        """The images in order, ``batch_size`` at a time (the last batch may be smaller)."""
        n = len(self)
        return self.loader([list(range(i, min(n, i + batch_size))) for i in range(0, n, batch_size)],
                           pin_memory=pin_memory)

    def materialize(self) -> torch.Tensor:
        """Every image of the source as one uint8 tensor (N, 3, size, size)."""
        out = torch.empty(self.shape, dtype=torch.uint8)
        i = 0
        for batch in self.batches(256):
            out[i:i + len(batch)] = batch
            i += len(batch)
        return out

    def __repr__(self) -> str:
        return (f"ImageSource({len(self)} images of {self.where or 'a dataset'} at {self.size}px, "
                f"{self.workers} workers)")


def is_source(images) -> bool:
    return isinstance(images, ImageSource)


def epoch_batches(images, order: torch.Tensor, steps: int, global_batch: int, batch_size: int, rank: int,
                  device: torch.device):
    """``(indices, uint8 batch on the device)`` for each step of an epoch: this process's share
    (``rank``) of each global batch of ``order``. From a tensor: a slice of it (the in-memory path,
    as it always was); from an ``ImageSource``: decoded by its workers, a few batches ahead."""
    shares = [order[s * global_batch:(s + 1) * global_batch][rank * batch_size:(rank + 1) * batch_size]
              for s in range(steps)]
    if not is_source(images):
        for idx in shares:
            yield idx, images[idx]
        return
    cpu = order.cpu()
    lists = [cpu[s * global_batch:(s + 1) * global_batch][rank * batch_size:(rank + 1) * batch_size].tolist()
             for s in range(steps)]
    for idx, batch in zip(shares, images.loader(lists, pin_memory=device.type == "cuda")):
        yield idx, batch.to(device, non_blocking=True)
