"""A run's data: what ``--dataset`` / ``--subset`` name, loaded once, and what checks need of it.

``load_run_data(cfg, check)`` returns a run's ``RunData``: the training images (a
``labdata.LabData``, labelled or not) and the labelled evaluation set, if any. The training
images are a uint8 tensor (in memory: the labs, anything under ``--stream_above_gb``) or an
``sslkit.imagesource.ImageSource`` (streamed: decoded by worker processes at every pass).
``check(info)`` sees the data's ``DataInfo`` before a folder's images are decoded (the
command line validates the config there). ``load_data(cfg)`` is the (train, test) pair of
a labelled data set, as the sweep and the summaries read it. ``fingerprint`` identifies the
training images, so a run never resumes on other data.

Where the images come from:

* a registered data set (``labdata.datasets()``): its split for self-supervised methods
  (``ssl_split``: STL-10's 105,000 train+unlabeled images) or, for methods that use labels,
  ``train``; evaluation on its ``train`` and test split;
* a labelled folder (``train/<class>/*``, ``test/`` or ``val/<class>/*``) or archive;
* any other folder or archive of images, at any depth: images without labels (files that
  are not images or do not decode are skipped, and counted; ``--strict_images`` refuses
  them); evaluation only on ``--eval_dataset``.

Images are read at ``--image_size`` (shorter side resized, centre square).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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
        return DataInfo(None, None, cfg.image_size, name=cfg.dataset)
    subset = subset_arg(cfg.subset)
    split = _train_split(cfg, spec)
    count = spec.subsets.get(subset, {}).get(split) if isinstance(subset, str) else subset
    labelled = split not in spec.unlabelled_splits
    n = (count * spec.num_classes if labelled else count) if count else None
    return DataInfo(n, spec.num_classes if labelled else None, cfg.image_size, spec.name)


def _train_split(cfg, spec) -> str:
    """The split a run trains on: ``train`` for a method that uses labels, else the data set's ``ssl_split``."""
    from .registry import METHODS, load_plugins

    load_plugins()
    cls = METHODS.get(cfg.method)
    return "train" if cls is None or cls.uses_labels else spec.ssl_split


@dataclass
class RunData:
    """A run's training images (``train``: a ``labdata.LabData`` whose ``images`` are a tensor or an
    ``ImageSource``; ``labels`` None without labels) and its labelled evaluation set ``eval``
    (bank images, bank labels, query images, query labels), or None."""

    train: object
    eval: tuple | None
    stream: bool
    skipped: list = field(default_factory=list)  # files of the source that are not images or did not decode

    @property
    def info(self) -> DataInfo:
        return info_of(self.train)

    def data_id(self, dataset: str) -> dict:
        """What the checkpoint records of the training data (``sslkit.engine.fit``'s ``data_id``)."""
        train = self.train
        fp = train.extra.get("fingerprint") or fingerprint(train.images, train.labels)
        return {"fingerprint": fp, "num_samples": len(train),
                "source": f"{dataset} ({train.source})" if train.source else dataset}


def workers_for(cfg) -> int:
    from .imagesource import default_workers

    return default_workers() if cfg.workers < 0 else cfg.workers


def _streams(cfg, n: int) -> bool:
    return bool(cfg.stream) or n * 3 * cfg.image_size ** 2 > cfg.stream_above_gb * 1e9


def _at_size(data, size: int, stream: bool, workers: int, fp: str | None = None):
    """``data`` (a registered split in memory) at ``size`` pixels, streamed or in memory; the
    fingerprint of the images as stored (and the size) identifies it either way."""
    from dataclasses import replace

    from .imagesource import ArrayImages, ImageSource

    if data.images.shape[-1] == size and not stream:
        return data
    fp = fp or fingerprint(data.images, data.labels) + ("" if data.images.shape[-1] == size else f"@{size}")
    source = ImageSource(ArrayImages(data.images, size), size, workers, names=data.names, fingerprint=fp,
                         where=f"{data.name}/{data.split}")
    return replace(data, images=source if stream else source.materialize(), extra={**data.extra, "fingerprint": fp})


def _registered(cfg, name: str, split: str, subset, stream: bool | None = None):
    """A split of a registered data set at ``cfg.image_size`` (ImageNet: from its folder)."""
    import labdata
    from labdata.registry import SPECS

    spec = SPECS[name]
    if spec.folder_only:
        import os

        folder = os.environ.get(spec.env_var)
        if not folder:
            raise labdata.LabDataError(f"{name} cannot be downloaded here: set {spec.env_var} to its folder "
                                       "(train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) or give that folder as --dataset")
        return _labelled_folder(cfg, folder, split, subset, stream)
    data = labdata.load(name, split, subset=subset)
    stream = _streams(cfg, len(data)) if stream is None else stream
    return _at_size(data, cfg.image_size, stream, workers_for(cfg))


def _labelled_folder(cfg, path, split: str, subset, stream: bool | None = None):
    """A split of a labelled tree: decoded in memory as ``labdata.load_image_folder`` does, or streamed."""
    import labdata
    from labdata.files import FileImages, labelled_files

    from .imagesource import ImageSource

    if split == "test" and not _has_split(path, "test"):
        split = "val"  # ImageNet's layout
    files, labels, classes = labelled_files(path, split)
    if subset is not None:
        keep = labdata.balanced_indices(labels, subset if isinstance(subset, int) else 0, seed=0, classes=classes,
                                        where=f"{path}:{split}")
        files, labels = files.subset(keep), labels[keep]
    stream = _streams(cfg, len(files)) if stream is None else stream
    if not stream:
        return labdata.load_image_folder(path, split, size=cfg.image_size, subset=subset, seed=0)
    _random_access(files, cfg)
    source = ImageSource(FileImages(files, cfg.image_size, skip_bad=True), cfg.image_size, workers_for(cfg),
                         fingerprint=files.fingerprint(cfg.image_size), where=str(files.root))
    return labdata.LabData(source, labels, classes, name=Path(path).name, split=split, source=str(path),
                           extra={"files": files.names, "fingerprint": source.fingerprint})


def _has_split(path, split: str) -> bool:
    from labdata.files import scan_images

    root = Path(path).expanduser()
    if root.is_dir():
        return (root / split).is_dir()
    return any(n.startswith(split + "/") for n in scan_images(root).names)


def _random_access(files, cfg) -> None:
    import labdata

    if not files.random_access:
        raise labdata.LabDataError(f"{files.root} is a compressed archive, which cannot be read at random positions "
                                   "as streaming needs: extract it (or make an uncompressed .tar), or keep the images "
                                   f"in memory (--stream=false with a larger --stream_above_gb)")


def _skipped_line(root, skipped: list, total: int) -> str:
    shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    return (f"skipped {len(skipped)} of {total} files in {root} that are not images or do not decode: {shown} "
            "(--strict_images=true makes this an error)")


def _unlabelled(cfg, path, check, log) -> tuple:
    """Every image of a folder or archive without labels: listed, checked (``check``), then decoded
    in memory by the worker processes, or streamed. Returns (LabData, skipped files)."""
    import labdata
    from labdata.files import FileImages, decode_files, probe, scan_images

    from .imagesource import ImageSource

    files = scan_images(path, what="--dataset")
    subset = subset_arg(cfg.subset)
    if subset is not None:
        files = files.subset(labdata.random_indices(len(files), int(subset), seed=0, where=str(files.root)))
    stream = _streams(cfg, len(files))
    if stream:
        _random_access(files, cfg)
    check(DataInfo(len(files), None, cfg.image_size, str(path)))
    skipped, total = list(files.skipped), len(files) + len(files.skipped)
    if cfg.strict_images and skipped:
        raise labdata.LabDataError(f"--strict_images: {len(skipped)} file(s) in {files.root} are not images: "
                                   f"{', '.join(skipped[:5])}")
    workers = workers_for(cfg)
    if stream:  # headers only: a file that fails to decode later stops the run with its name
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, workers)) as pool:
            ok = list(pool.map(lambda i: probe(files, i), range(len(files))))
        bad = [i for i, good in enumerate(ok) if not good]
        keep = [i for i, good in enumerate(ok) if good]
    else:
        images, kept, bad = decode_files(files, cfg.image_size, workers, skip_bad=True)
        keep = kept.tolist()
    skipped += [files.names[i] for i in bad]
    if cfg.strict_images and bad:
        raise labdata.LabDataError(f"--strict_images: {len(bad)} image file(s) in {files.root} do not decode: "
                                   f"{', '.join(files.names[i] for i in bad[:5])}")
    if not keep:
        raise labdata.LabDataError(f"none of the {len(files)} image files in {files.root} decodes "
                                   f"(e.g. {', '.join(files.names[:3])})")
    if skipped and log is not None:
        log(_skipped_line(files.root, skipped, total))
    files = files.subset(keep)
    if stream:
        images = ImageSource(FileImages(files, cfg.image_size, skip_bad=True), cfg.image_size, workers,
                             fingerprint=files.fingerprint(cfg.image_size), where=str(files.root))
    data = labdata.LabData(images, None, [], name=files.root.name, source=str(files.root),
                           extra={"files": files.names, "skipped": skipped,
                                  **({"fingerprint": images.fingerprint} if stream else {})})
    check(info_of(data, str(path)))  # again with the images that decoded
    return data, skipped


def _eval_set(cfg, name: str, subset, stream: bool) -> tuple:
    """(bank, queries) of a labelled data set: its train split and its test (or val) split."""
    import labdata
    from labdata.registry import SPECS

    if name in SPECS:
        spec = SPECS[name]
        return tuple(_registered(cfg, name, s, subset, stream) for s in ("train", spec.test_split))
    if labdata.layout(name) != "labelled":
        raise labdata.LabDataError(f"--eval_dataset={name} is not a labelled set of images: it needs train/<class>/* "
                                   "and test/<class>/* (or val/<class>/*)")
    return tuple(_labelled_folder(cfg, name, s, subset, stream) for s in ("train", "test"))


def _evaluation(cfg, train, stream: bool):
    """The evaluation set of a run (see ``RunData``), or None."""
    import labdata
    from labdata.registry import SPECS

    if cfg.eval_dataset:
        bank, queries = _eval_set(cfg, cfg.eval_dataset, subset_arg(cfg.eval_subset or "full"), stream)
    elif cfg.dataset in SPECS:
        spec = SPECS[cfg.dataset]
        subset = subset_arg(cfg.eval_subset or cfg.subset)
        if train.labelled and not cfg.eval_subset and not spec.folder_only:
            bank, queries = train, _registered(cfg, cfg.dataset, spec.test_split, subset, stream)
        else:
            bank, queries = _eval_set(cfg, cfg.dataset, subset, stream)
    elif train.labelled:
        subset = subset_arg(cfg.eval_subset or cfg.subset)
        bank = train if not cfg.eval_subset else _labelled_folder(cfg, cfg.dataset, "train", subset, stream)
        queries = _labelled_folder(cfg, cfg.dataset, "test", subset, stream)
    else:
        return None
    if not (bank.labelled and queries.labelled):
        raise labdata.LabDataError("the evaluation images have no labels: give --eval_dataset a labelled set")
    return bank.images, bank.labels, queries.images, queries.labels


def load_training(cfg, check=None, log=None) -> tuple:
    """(training ``LabData``, skipped files) of ``cfg``, as a run reads them (see ``load_run_data``)."""
    import labdata
    from labdata.registry import SPECS

    check = check or (lambda info: None)
    subset = subset_arg(cfg.subset)
    if cfg.dataset in SPECS:
        return _registered(cfg, cfg.dataset, _train_split(cfg, SPECS[cfg.dataset]), subset), []
    if labdata.layout(cfg.dataset) == "labelled":
        return _labelled_folder(cfg, cfg.dataset, "train", subset), []
    return _unlabelled(cfg, cfg.dataset, check, log)


def load_run_data(cfg, check=None, log=print) -> RunData:
    """The training images and the evaluation set of ``cfg`` (see the module). ``check(info)``
    is called with the training data's ``DataInfo`` as soon as it is known: for a folder of
    images without labels, before any image is decoded (and again after). Raises
    ``labdata.LabDataError`` with what to do."""
    check = check or (lambda info: None)
    train, skipped = load_training(cfg, check, log)
    stream = not torch.is_tensor(train.images)
    check(info_of(train, cfg.dataset))
    return RunData(train, _evaluation(cfg, train, stream), stream, skipped)


def load_data(cfg):
    """The (train, test) ``labdata.LabData`` of ``cfg.dataset`` (a registered data set, or a folder:
    labelled, or without labels, when ``test`` is None), read at ``cfg.image_size``. Raises
    ``labdata.LabDataError`` with what to do."""
    import labdata
    from labdata.registry import SPECS

    subset = subset_arg(cfg.subset)
    if cfg.dataset in SPECS:
        spec = SPECS[cfg.dataset]
        return tuple(_registered(cfg, cfg.dataset, s, subset) for s in ("train", spec.test_split))
    if labdata.layout(cfg.dataset) == "labelled":
        return tuple(_labelled_folder(cfg, cfg.dataset, s, subset) for s in ("train", "test"))
    return _unlabelled(cfg, cfg.dataset, lambda info: None, None)[0], None


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
