"""Images with no labels: every image file at any depth of a folder, a ``.tar`` or a ``.tar.gz``.

``scan_images(path)`` lists them (sorted by their path inside the source) without decoding
anything; files whose suffix is not an image's are set aside as ``skipped`` (hidden files and
folders, whose names start with a dot, are ignored). ``ImageFiles.read(i)`` returns one file's
bytes: from the folder, from its offset inside an uncompressed ``.tar`` (so worker processes
read any image at any time), or from memory for a compressed archive (read in one pass: a
``.tar.gz`` cannot be read at random positions). ``FileImages`` is the ``torch`` dataset that
decodes image ``i`` at ``size x size`` (``imagefolder.decode_image``), the one decoding every
path of the library shares: in memory, in DataLoader workers, in ``sslkit.predict``.

``layout(path)`` tells the two kinds of sources apart: ``"labelled"`` when every image sits at
``<split>/<class>/<file>`` with a ``train/`` split (the classic image-folder tree, ImageNet's
``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` among them), ``"unlabelled"`` otherwise.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .errors import LabDataError
from .imagefolder import IMAGE_SUFFIXES, decode_image

SPLITS = ("train", "test", "val")  # the split folders of a labelled tree


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _hidden(parts) -> bool:
    return any(p.startswith(".") for p in parts)


@dataclass
class ImageFiles:
    """The image files of one source, in a fixed order (sorted paths), and the files set aside."""

    root: Path
    names: list[str]  # paths inside the source (posix), sorted
    skipped: list[str] = field(default_factory=list)  # files that are not images, by suffix
    sizes: list[int] = field(default_factory=list)  # bytes of each file
    offsets: list[int] | None = None  # each image's offset inside an uncompressed .tar
    blobs: list[bytes] | None = None  # each image's bytes, for a compressed archive

    def __len__(self) -> int:
        return len(self.names)

    @property
    def kind(self) -> str:
        return "folder" if self.root.is_dir() else ("tar" if self.blobs is None else "compressed tar")

    @property
    def random_access(self) -> bool:
        """Whether any file can be read at any time without reading the source from its start."""
        return self.blobs is None

    def where(self, i: int) -> str:
        return f"{self.root}:{self.names[i]}" if not self.root.is_dir() else str(self.root / self.names[i])

    def read(self, i: int) -> bytes:
        if self.blobs is not None:
            return self.blobs[i]
        if self.offsets is not None:
            with open(self.root, "rb") as f:
                f.seek(self.offsets[i])
                return f.read(self.sizes[i])
        return (self.root / self.names[i]).read_bytes()

    def subset(self, keep) -> "ImageFiles":
        """The files at positions ``keep`` (in that order)."""
        keep = [int(k) for k in keep]

        def pick(xs):
            return [xs[k] for k in keep]

        return ImageFiles(self.root, pick(self.names), list(self.skipped), pick(self.sizes),
                          pick(self.offsets) if self.offsets is not None else None,
                          pick(self.blobs) if self.blobs is not None else None)

    def fingerprint(self, size: int) -> str:
        """A short hash of the files' paths and byte counts and the side they are read at: the
        same source read the same way has the same one (no file is read to compute it)."""
        h = hashlib.sha256(f"{size}|{len(self.names)}".encode())
        for name, n in zip(self.names, self.sizes):
            h.update(f"{name}|{n}\n".encode())
        return h.hexdigest()[:16]


def _scan_dir(root: Path, single: bool) -> tuple[list, list, list]:
    if single:
        return [root.name], [root.stat().st_size], []
    names, sizes, skipped = [], [], []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if _hidden(rel.parts) or not f.is_file():
            continue
        if _is_image_name(f.name):
            names.append(rel.as_posix())
            sizes.append(f.stat().st_size)
        else:
            skipped.append(rel.as_posix())
    return names, sizes, skipped


def _scan_tar(path: Path):
    """(names, sizes, skipped, offsets, blobs) of a tar archive's members; blobs only when compressed."""
    try:
        try:
            tar, compressed = tarfile.open(path, "r:"), False
        except tarfile.ReadError:
            tar, compressed = tarfile.open(path, "r:*"), True
        entries, skipped = [], []
        with tar:
            for m in tar:
                parts = [p for p in PurePosixPath(m.name).parts if p not in (".", "")]
                if not m.isfile() or not parts or _hidden(parts):
                    continue
                name = "/".join(parts)
                if not _is_image_name(name):
                    skipped.append(name)
                    continue
                data = tar.extractfile(m).read() if compressed else None
                entries.append((name, m.size, m.offset_data, data))
    except Exception as exc:  # tarfile.ReadError, EOFError, zlib/OSError on truncated or corrupt archives
        raise LabDataError(f"cannot read archive {path} ({type(exc).__name__}: {exc}): the archive is truncated "
                           "or corrupt, or not a tar; copy it again, or give the extracted folder") from exc
    entries.sort(key=lambda e: e[0])
    names = [e[0] for e in entries]
    sizes = [e[1] for e in entries]
    return names, sizes, sorted(skipped), None if compressed else [e[2] for e in entries], \
        [e[3] for e in entries] if compressed else None


def scan_images(path, what: str = "image source") -> ImageFiles:
    """Every image file under ``path`` (a folder, at any depth; a .tar/.tar.gz; or one image
    file), without decoding any. Raises ``LabDataError`` for a missing path, an unreadable
    archive, or a source without a single image file (naming it and the first files set aside)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise LabDataError(f"{what} {root} does not exist; check the path")
    if root.is_dir() or _is_image_name(root.name):
        names, sizes, skipped = _scan_dir(root, single=not root.is_dir())
        files = ImageFiles(root if root.is_dir() else root.parent, names, skipped, sizes)
    else:
        names, sizes, skipped, offsets, blobs = _scan_tar(root)
        files = ImageFiles(root, names, skipped, sizes, offsets, blobs)
    if not files.names:
        others = f" ({len(skipped)} other file(s), e.g. {', '.join(skipped[:3])})" if skipped else ""
        raise LabDataError(f"{what} {root} holds no image files{others}; images are files ending in "
                           f"{', '.join(sorted(IMAGE_SUFFIXES))}")
    return files


def layout(path) -> str:
    """``"labelled"`` for a tree of ``<split>/<class>/<image>`` with a ``train`` split (split one of
    train, test, val), ``"unlabelled"`` for any other source of images (``scan_images``)."""
    root = Path(path).expanduser()
    if root.is_dir():
        train = root / "train"
        if not train.is_dir():
            return "unlabelled"
        inside = [p for p in root.iterdir() if not p.name.startswith(".")]
        if any(p.is_file() and _is_image_name(p.name) for p in inside) or \
                any(p.is_dir() and p.name not in SPLITS for p in inside):
            return "unlabelled"  # images or other folders beside the splits
        for split in (p for p in inside if p.is_dir()):
            for entry in split.iterdir():
                if entry.name.startswith("."):
                    continue
                if entry.is_file() or any(q.is_dir() for q in entry.iterdir() if not q.name.startswith(".")):
                    return "unlabelled"  # an image directly under a split, or a class folder with folders
        return "labelled"
    if _is_image_name(root.name):
        return "unlabelled"
    names = scan_images(root).names
    parts = [n.split("/") for n in names]
    ok = all(len(p) == 3 and p[0] in SPLITS for p in parts) and any(p[0] == "train" for p in parts)
    return "labelled" if ok else "unlabelled"


class FileImages(torch.utils.data.Dataset):
    """Image ``i`` of ``files`` decoded at ``size x size``: ``(i, uint8 (3, size, size))``, or
    ``(i, None)`` for a file that does not decode when ``skip_bad`` (else ``LabDataError``)."""

    def __init__(self, files: ImageFiles, size: int, skip_bad: bool = False):
        self.files, self.size, self.skip_bad = files, size, skip_bad

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            return i, torch.from_numpy(np.ascontiguousarray(decode_image(self.files.read(i), self.files.where(i),
                                                                         self.size)))
        except LabDataError:
            if self.skip_bad:
                return i, None
            raise
        except OSError as exc:
            raise LabDataError(f"cannot read {self.files.where(i)} ({exc}); check the file and its permissions") \
                from exc


def collate_decoded(items):
    """A DataLoader batch of ``FileImages`` items: (positions, the images that decoded, stacked or None,
    the positions that did not)."""
    good = [(i, x) for i, x in items if x is not None]
    bad = [i for i, x in items if x is None]
    images = torch.stack([x for _, x in good]) if good else None
    return torch.tensor([i for i, _ in good], dtype=torch.long), images, bad


def decode_files(files: ImageFiles, size: int, workers: int = 0, skip_bad: bool = True, batch_size: int = 256):
    """Every image of ``files`` decoded at ``size x size`` into one uint8 tensor (N, 3, size, size),
    ``workers`` processes decoding in parallel (0: this process). Returns ``(images, kept, bad)``:
    the positions in ``files`` of the images kept, in order, and of the files that did not decode
    (skipped when ``skip_bad``, else the first one raises ``LabDataError``)."""
    loader = torch.utils.data.DataLoader(FileImages(files, size, skip_bad), batch_size=batch_size,
                                         num_workers=workers, collate_fn=collate_decoded,
                                         generator=torch.Generator())  # the global random stream is not drawn from
    out = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    ok = torch.zeros(len(files), dtype=torch.bool)
    bad: list[int] = []
    for positions, images, failed in loader:
        if images is not None:
            out[positions] = images
            ok[positions] = True
        bad += failed
    kept = ok.nonzero().flatten()
    return (out if bool(ok.all()) else out[kept]), kept, sorted(bad)


def labelled_files(path, split: str) -> tuple[ImageFiles, torch.Tensor, list[str]]:
    """The images of ``split`` in a labelled tree (``<split>/<class>/<file>``) as ``ImageFiles`` in
    the order ``read_image_folder`` decodes them (by class, then file name), their labels (the
    class's position among the sorted class names of every split) and the class names."""
    files = scan_images(path)
    parts = [n.split("/") for n in files.names]
    classes = sorted({p[1] for p in parts if len(p) == 3 and p[0] in SPLITS})
    chosen = sorted((p[1], p[2], i) for i, p in enumerate(parts) if len(p) == 3 and p[0] == split)
    if not chosen:
        raise LabDataError(f"{files.root} has no {split}/<class>/ folder of images")
    missing = sorted(set(classes) - {c for c, _, _ in chosen})
    if missing:
        raise LabDataError(f"{files.root}: {split}/ has no images of {len(missing)} class(es) that another split has "
                           f"(e.g. {missing[0]!r}); give every class images in every split, or remove it from all")
    index = {c: k for k, c in enumerate(classes)}
    return (files.subset([i for _, _, i in chosen]), torch.tensor([index[c] for c, _, _ in chosen], dtype=torch.long),
            classes)


def probe(files: ImageFiles, i: int) -> bool:
    """Whether file ``i`` opens as an image (its header only: nothing is decoded)."""
    import io

    from PIL import Image

    try:
        if files.blobs is None and files.offsets is None:
            with Image.open(files.root / files.names[i]):
                return True
        with Image.open(io.BytesIO(files.read(i))):
            return True
    except Exception:
        return False
