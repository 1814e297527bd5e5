"""``labdata.load``: one call from a dataset name to tensors.

Where the images come from, in order:
1. the environment variable of the dataset (``LABDATA_CIFAR10``, ``LABDATA_CIFAR100``,
   ``LABDATA_SVHN``) naming an image-folder tree or a ``.tar``/``.tar.gz`` of one;
2. the official files in the cache folder (``$LABDATA_DIR/raw`` or ``data/raw``),
   downloaded through torchvision when missing and ``download=True``.
Either way the decoded split is kept as a tensor file, so later loads are fast.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import cache, official
from .errors import LabDataError
from .imagefolder import read_image_folder
from .registry import CIFAR100_COARSE_CLASSES, CIFAR100_FINE_TO_COARSE, DatasetSpec, get_spec
from .subsets import balanced_indices, per_class_count, random_indices


@dataclass
class LabData:
    """A loaded split: ``images`` uint8 (N,3,H,W), ``labels`` int64 (N,), ``classes``.

    Unpacks as ``images, labels, classes = labdata.load(...)``. ``indices`` are the
    positions of the images in the full split (the record of a subset), ``source`` says
    where they were read from. CIFAR-100 also carries ``coarse_labels``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None  # None: images without labels (a folder of them, STL-10's unlabelled split)
    classes: list[str]
    name: str = ""
    split: str = ""
    indices: torch.Tensor | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.images, self.labels, self.classes))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return self.labels is not None and len(self.classes) > 0

    @property
    def names(self) -> list[str]:
        """Where each image came from: its file inside a folder source, else ``split[index]``."""
        if self.extra.get("files") is not None:
            return list(self.extra["files"])
        index = self.indices.tolist() if self.indices is not None else range(len(self))
        return [f"{self.name}:{self.split}[{i}]" for i in index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"LabData({self.name}/{self.split}: {len(self)} images {tuple(self.images.shape[1:])}, "
                f"{self.num_classes} classes, source={self.source})")


def _env_source(spec: DatasetSpec) -> Path | None:
    value = os.environ.get(spec.env_var)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise LabDataError(f"{spec.env_var}={value} does not exist. Point it at an image-folder tree or "
                           f".tar/.tar.gz of one, or unset it to use the official files.")
    return path


def _source_key(path: Path) -> str:
    """A key of the tensor cache that changes with any change of the source: for a folder, every
    file's relative path, size and modification time (an image edited or a class added inside it
    is seen, though the folder's own time does not change); for an archive, its size and time."""
    h = hashlib.sha1(str(path.resolve()).encode())
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return "folder-" + h.hexdigest()[:10]


def _payload(data: dict, source: str) -> dict:
    labels = data.get("labels")
    out = {"images": torch.from_numpy(data["images"]), "labels": None if labels is None else torch.from_numpy(labels),
           "classes": list(data["classes"]), "source": source}
    if "coarse_labels" in data:
        out["coarse_labels"] = torch.from_numpy(data["coarse_labels"])
    return out


def _load_full(spec: DatasetSpec, split: str, download: bool) -> dict:
    """The whole split as a payload dict, from the tensor cache when possible."""
    env_path = _env_source(spec)
    if spec.folder_only and env_path is None:
        raise LabDataError(f"{spec.name} cannot be downloaded automatically: set {spec.env_var} to its folder "
                           "(train/<wnid>/*.JPEG and val/<wnid>/*.JPEG), or pass the folder's path as the data set")
    if spec.folder_only:
        raise LabDataError(f"{spec.name} ({env_path}) is too large to load as one tensor: `python -m sslkit.train "
                           f"--dataset={spec.name}` streams it from its folder (labdata.scan_images lists its files)")
    official_root = _official_root(spec, env_path)
    if env_path is not None and official_root is None:
        key = _source_key(env_path)
        cached = cache.load_split(cache.tensor_path(spec.name, split, key))
        if cached is not None:
            return cached
        decoded = read_image_folder(env_path, spec.splits, size=spec.image_size)
        if split not in decoded:
            raise LabDataError(f"{spec.env_var}={env_path} has no {split}/ folder of images.")
        result = None
        for s, data in decoded.items():  # one pass decodes every split: cache them all
            payload = _payload(data, f"{spec.env_var}={env_path}")
            path = cache.tensor_path(spec.name, s, key)
            cache.save_split(path, payload)
            for stale in path.parent.glob(f"{spec.name}-{s}-folder-*.pt"):  # earlier states of a folder source
                if stale != path:
                    stale.unlink(missing_ok=True)
            if s == split:
                result = payload
        return result

    raw = official_root or cache.raw_root()
    cached = cache.load_split(cache.tensor_path(spec.name, split, "official")) if spec.cache_official else None
    if cached is not None:
        return cached
    if official.missing_files(spec, raw, [split]):
        if not download:
            raise LabDataError(
                f"{spec.name}/{split} is not available offline: the official files are not in "
                f"{official.official_dir(spec, raw)}. Run `python -m labdata fetch {spec.name}` with "
                f"internet access, or set {spec.env_var} to an image-folder copy.")
        official.download(spec, raw, [split])
    official.verify(spec, raw, [split])
    payload = _payload(official.read_official(spec, raw, split), f"official:{official.official_dir(spec, raw)}")
    if spec.cache_official:
        cache.save_split(cache.tensor_path(spec.name, split, "official"), payload)
    return payload


def _official_root(spec: DatasetSpec, env_path: Path | None) -> Path | None:
    """The folder holding ``spec``'s official files when its environment variable names them (the
    folder ``stl10_binary`` itself, or one that contains it) rather than an image-folder tree."""
    if env_path is None or not spec.base_folder or not spec.files or not env_path.is_dir():
        return None
    if (env_path / spec.base_folder).is_dir():
        return env_path
    return env_path.parent if env_path.name == spec.base_folder else None


def load(name: str, split: str = "train", subset=None, *, target: str = "fine",
         download: bool = True, seed: int = 0) -> LabData:
    """Load a split of ``cifar10``, ``cifar100``, ``svhn`` or ``stl10`` as tensors.

    subset: None for the whole split, a name (``"lab"``: CIFAR-10/SVHN 1000 train / 200 test
        images per class, CIFAR-100 100 / 20; ``"mini"``: a tenth of that) or an int
        (images per class). Subsets are class-balanced and deterministic. A split without
        labels (STL-10's ``unlabeled`` and ``train+unlabeled``, whose ``labels`` are None)
        takes that many images in all, a seeded random sample.
    target: for CIFAR-100, ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
    download: fetch the official files through torchvision when they are missing.
    """
    spec = get_spec(name)
    if split not in spec.splits:
        raise LabDataError(f"{spec.name} has no split {split!r}; its splits are {list(spec.splits)}")
    if target not in ("fine", "coarse") or (target == "coarse" and spec.name != "cifar100"):
        raise LabDataError(f"target={target!r} is not available for {spec.name}: use 'fine' "
                           "(or 'coarse' with cifar100)")
    full = _load_full(spec, split, download)
    images, labels, classes = full["images"], full["labels"], list(full["classes"])
    extra = {}
    if spec.name == "cifar100":
        coarse = full.get("coarse_labels")
        if coarse is None:  # image folders hold fine classes only: use the standard map
            coarse = torch.tensor(CIFAR100_FINE_TO_COARSE, dtype=torch.int64)[labels]
        extra["coarse_labels"] = coarse
        extra["coarse_classes"] = list(CIFAR100_COARSE_CLASSES)
        extra["fine_labels"] = labels
        if target == "coarse":
            labels, classes = coarse, list(CIFAR100_COARSE_CLASSES)
    indices = None
    if subset is not None:
        count = per_class_count(spec, split, subset)
        indices = (random_indices(len(images), count, seed, where=f"{spec.name}/{split}") if labels is None else
                   balanced_indices(full["labels"], count, seed, classes=list(full["classes"]),
                                    where=f"{spec.name}/{split}"))
        images, labels = images[indices], (labels[indices] if labels is not None else None)
        extra = {k: (v[indices] if torch.is_tensor(v) else v) for k, v in extra.items()}
        record = cache.cache_root() / "subsets" / f"{spec.name}-{split}-{subset}-seed{seed}.json"
        if not record.exists():
            cache.save_json(record, {"dataset": spec.name, "split": split, "subset": subset,
                                     "seed": seed, "source": full["source"],
                                     "indices": indices.tolist()})
    return LabData(images=images, labels=labels, classes=classes, name=spec.name, split=split,
                   indices=indices, source=full["source"], extra=extra)


def load_image_folder(path, split: str = "train", size: int = 32, subset=None, seed: int = 0) -> LabData:
    """Load any image-folder tree (``<split>/<class>/*``) or tar of one, resized to ``size``."""
    path = Path(path).expanduser()
    # classes by name across both splits (only ``split`` is decoded)
    decoded = read_image_folder(path, tuple(dict.fromkeys((split, "train", "test"))), size=size, decode=(split,))
    data = decoded.get(split)
    if data is None:
        raise LabDataError(f"{path} has no {split}/ folder of images")
    images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
    indices = None
    if subset is not None:
        indices = balanced_indices(labels, per_class_count(None, split, subset), seed,
                                   classes=data["classes"], where=f"{path}:{split}")
        images, labels = images[indices], labels[indices]
    files = data["files"] if indices is None else [data["files"][i] for i in indices.tolist()]
    return LabData(images, labels, data["classes"], name=path.name, split=split,
                   indices=indices, source=str(path), extra={"files": files})


def load_unlabelled(path, size: int = 32, subset: int | None = None, seed: int = 0, workers: int = 0) -> LabData:
    """Every image at any depth of a folder, ``.tar`` or ``.tar.gz`` (``labdata.scan_images``),
    decoded at ``size x size`` (shorter side resized, centre square), without labels.

    subset: None for all of them, or a number of images: a seeded random sample, in a seeded
        shuffled order (as the labelled subsets).
    workers: processes that decode in parallel (0: this one).
    Files that are not images, and images that do not decode, are skipped: ``extra["skipped"]``
    lists their paths inside the source (``extra["files"]``: the images kept, in order).
    """
    from .files import decode_files, scan_images

    files = scan_images(path)
    if subset is not None:
        files = files.subset(random_indices(len(files), int(subset), seed, where=str(files.root)))
    images, kept, bad = decode_files(files, size, workers, skip_bad=True)
    names = [files.names[i] for i in kept.tolist()]
    if not names:
        raise LabDataError(f"none of the {len(files)} image files in {files.root} decodes (e.g. "
                           f"{', '.join(files.names[:3])}): check that they are images")
    return LabData(images, None, [], name=files.root.name, split="", source=str(files.root),
                   extra={"files": names, "skipped": files.skipped + [files.names[i] for i in bad]})


def available(name: str, split: str = "train") -> bool:
    """True when ``load(name, split, download=False)`` would succeed without the network."""
    spec = get_spec(name)
    try:
        if _env_source(spec) is not None:
            return True
    except LabDataError:
        return False
    if spec.folder_only:
        return False
    if cache.tensor_path(spec.name, split, "official").is_file():
        return True
    return not official.missing_files(spec, cache.raw_root(), [split])


def fetch(name: str, splits=None) -> list[LabData]:
    """Download (or decode) every split of ``name`` into the cache, for offline use later."""
    spec = get_spec(name)
    return [load(spec.name, s, download=True) for s in (splits or spec.splits)]


def info(name: str) -> dict:
    spec = get_spec(name)
    env = os.environ.get(spec.env_var)
    return {
        "name": spec.name,
        "description": spec.description,
        "splits": list(spec.splits),
        "num_classes": spec.num_classes,
        "image_size": spec.image_size,
        "homepage": spec.homepage,
        "source": f"{spec.env_var}={env}" if env else (
            f"set {spec.env_var} to its folder" if spec.folder_only else
            f"official files in {official.official_dir(spec, cache.raw_root())}"),
        "available_offline": {s: available(spec.name, s) for s in spec.splits},
        "subsets": spec.subsets,
        "cache": str(cache.cache_root()),
    }
