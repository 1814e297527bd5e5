"""The official on-disk formats: download, verify and read them.

* CIFAR-10 / CIFAR-100: the "python version" archives, pickled batches of uint8 rows
  (3072 bytes = 3 x 32 x 32, channel-major) with ``labels`` / ``fine_labels``.
* SVHN: the cropped-digits ``{split}_32x32.mat`` files, ``X`` of shape (32, 32, 3, N)
  and ``y`` of shape (N, 1) with the digit 0 stored as label 10.
* STL-10: the binary files of ``stl10_binary.tar.gz``, ``{split}_X.bin`` raw uint8 bytes of
  N x 3 x 96 x 96 images stored column-major (each channel transposed), ``{split}_y.bin`` one
  byte per image with the labels 1..10 (``unlabeled_X.bin`` has no labels).

Downloads stream into a temporary folder with a time limit on every read
(``LABDATA_TIMEOUT`` seconds, 60 by default: a stalled connection fails instead of waiting
forever), and are renamed into place only after every checksum matched, so a failed or
interrupted fetch leaves nothing half-written behind (a folder a killed fetch left is
removed by the next one).
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import LabDataError
from .registry import DatasetSpec


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def official_dir(spec: DatasetSpec, raw_root: Path) -> Path:
    return raw_root / spec.base_folder


def _needed_files(spec: DatasetSpec, splits) -> list[tuple[str, str]]:
    files = [f for s in splits for f in spec.files[s]]
    if spec.meta_file:
        files.append(spec.meta_file)
    return files


def missing_files(spec: DatasetSpec, raw_root: Path, splits) -> list[str]:
    folder = official_dir(spec, raw_root)
    return [name for name, _ in _needed_files(spec, splits) if not (folder / name).is_file()]


def verify(spec: DatasetSpec, raw_root: Path, splits) -> None:
    """Check every needed file's MD5; raise a LabDataError naming the bad file."""
    folder = official_dir(spec, raw_root)
    for name, expected in _needed_files(spec, splits):
        path = folder / name
        if not path.is_file():
            raise LabDataError(f"{spec.name}: missing file {path}. Run `python -m labdata fetch "
                               f"{spec.name}` on a machine with internet access.")
        got = md5sum(path)
        if got != expected:
            raise LabDataError(
                f"{spec.name}: checksum mismatch for {path} (md5 {got}, expected {expected}). "
                f"The file is corrupt or truncated: delete it and run `python -m labdata fetch "
                f"{spec.name}` again.")


def timeout_s() -> float:
    """Seconds a download may wait for the next bytes (``LABDATA_TIMEOUT``, default 60)."""
    import os

    try:
        value = float(os.environ.get("LABDATA_TIMEOUT", "60"))
    except ValueError:
        raise LabDataError(f"LABDATA_TIMEOUT={os.environ['LABDATA_TIMEOUT']!r}: give a number of seconds") from None
    return value if value > 0 else 60.0


def download_url(url: str, folder: str, filename: str, md5: str | None = None) -> None:
    """Stream ``url`` to ``folder/filename``, every read bounded by ``timeout_s()``; a stall or a
    cut connection raises ``LabDataError`` (the caller's temporary folder goes with it)."""
    import socket
    import urllib.request

    dest = Path(folder) / filename
    try:
        with urllib.request.urlopen(url, timeout=timeout_s()) as response, open(dest, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except (socket.timeout, TimeoutError) as exc:
        raise LabDataError(f"downloading {url} stalled: no data for {timeout_s():.0f} s ({exc}). Try again later, "
                           "or raise LABDATA_TIMEOUT") from exc


def _remove_leftovers(spec: DatasetSpec, raw_root: Path) -> None:
    """Temporary folders of fetches that were killed (a finished or failed one removes its own)."""
    for leftover in raw_root.glob(f".{spec.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def download(spec: DatasetSpec, raw_root: Path, splits) -> None:
    """Fetch the official files for ``splits`` into ``raw_root`` (atomically)."""
    from torchvision.datasets.utils import extract_archive

    raw_root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(spec, raw_root)
    final = official_dir(spec, raw_root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=raw_root))
    try:
        if spec.url:  # one archive with every split
            fname = spec.url.rsplit("/", 1)[1]
            download_url(spec.url, str(tmp), fname, spec.archive_md5)
            if md5sum(tmp / fname) != spec.archive_md5:
                raise LabDataError(f"{spec.name}: downloaded archive {fname} has a wrong checksum; "
                                   "try again (the download was probably cut short).")
            extract_archive(str(tmp / fname), str(tmp))
            (tmp / fname).unlink()
            staged = tmp / spec.base_folder
            verify(spec, tmp, spec.splits)
        else:  # one file per split
            staged = tmp / spec.base_folder
            staged.mkdir()
            for s in splits:
                for name, md5 in spec.files[s]:
                    if not (final / name).is_file():
                        download_url(spec.split_urls[s], str(staged), name)
                        if md5sum(staged / name) != md5:
                            raise LabDataError(f"{spec.name}: downloaded {name} has a wrong checksum; "
                                               "try again (the download was probably cut short).")
        final.mkdir(parents=True, exist_ok=True)
        for item in staged.iterdir():
            item.replace(final / item.name)
    except LabDataError:
        raise
    except Exception as exc:  # network errors, truncated archives, disk full
        raise LabDataError(
            f"{spec.name}: could not download the official files ({type(exc).__name__}: {exc}). "
            f"Without internet access, point {spec.env_var} at an image-folder copy "
            f"(train/<class>/*, test/<class>/*, or a .tar/.tar.gz of it), or copy the official "
            f"files into {final}.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as exc:
        raise LabDataError(f"cannot read {path} ({type(exc).__name__}: {exc}); the file is corrupt: "
                           "delete it and fetch the dataset again.") from exc


def read_cifar(spec: DatasetSpec, raw_root: Path, split: str) -> dict:
    folder = official_dir(spec, raw_root)
    images, fine, coarse = [], [], []
    for name, _ in spec.files[split]:
        entry = _unpickle(folder / name)
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        fine.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        coarse.extend(entry.get("coarse_labels", []))
    meta = _unpickle(folder / spec.meta_file[0])
    classes = meta.get("label_names") or meta.get("fine_label_names")
    out = {"images": np.concatenate(images), "labels": np.asarray(fine, dtype=np.int64),
           "classes": list(classes)}
    if coarse:
        out["coarse_labels"] = np.asarray(coarse, dtype=np.int64)
    return out


def read_svhn(spec: DatasetSpec, raw_root: Path, split: str) -> dict:
    from scipy.io import loadmat

    path = official_dir(spec, raw_root) / spec.files[split][0][0]
    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise LabDataError(f"cannot read {path} ({type(exc).__name__}: {exc}); the file is corrupt: "
                           "delete it and run `python -m labdata fetch svhn` again.") from exc
    images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)
    labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    labels[labels == 10] = 0  # the .mat files store the digit 0 as 10
    return {"images": images, "labels": labels, "classes": [str(d) for d in range(10)]}


def _stl10_images(path: Path) -> np.ndarray:
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise LabDataError(f"cannot read {path} ({type(exc).__name__}: {exc}); delete it and run "
                           "`python -m labdata fetch stl10` again.") from exc
    if raw.size % (3 * 96 * 96):
        raise LabDataError(f"{path} holds {raw.size} bytes, not a whole number of 3x96x96 images: the file is "
                           "truncated; delete it and fetch the data set again.")
    return np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2))


def read_stl10(spec: DatasetSpec, raw_root: Path, split: str) -> dict:
    """One STL-10 split as arrays (the official binary layout, read as torchvision's ``STL10``
    reads it); ``labels`` is None for the splits without labels."""
    from .registry import STL10_CLASSES

    folder = official_dir(spec, raw_root)
    images, labels = [], []
    for part in split.split("+"):
        images.append(_stl10_images(folder / f"{part}_X.bin"))
        if part != "unlabeled":
            labels.append(np.fromfile(folder / f"{part}_y.bin", dtype=np.uint8).astype(np.int64) - 1)
            if len(labels[-1]) != len(images[-1]) or labels[-1].min(initial=0) < 0 or labels[-1].max(initial=0) > 9:
                raise LabDataError(f"{folder / (part + '_y.bin')} does not hold one label 1..10 per image of "
                                   f"{part}_X.bin; delete both and fetch the data set again.")
    names = folder / "class_names.txt"
    classes = names.read_text().split() if names.is_file() else list(STL10_CLASSES)
    out = {"images": np.concatenate(images) if len(images) > 1 else images[0], "classes": classes,
           "labels": labels[0] if split not in spec.unlabelled_splits else None}
    return out


def read_official(spec: DatasetSpec, raw_root: Path, split: str) -> dict:
    if spec.name == "stl10":
        return read_stl10(spec, raw_root, split)
    return read_svhn(spec, raw_root, split) if spec.name == "svhn" else read_cifar(spec, raw_root, split)
