"""Image-folder sources: a tree ``<split>/<class>/<image>`` or a ``.tar``/``.tar.gz`` of one.

Classes are the sorted folder names (for CIFAR-10 and CIFAR-100 that is the official label
order). Images are ordered by (class, file name), which makes every load of the same
source give the same order, and so the same lab subsets.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import LabDataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff", ".gif"}


def to_rgb(img, where: str):
    """An opened PIL image as 8-bit RGB with the right pixels whatever its mode: palette, grey, CMYK,
    YCbCr, LAB, HSV and alpha modes through Pillow's conversion (alpha dropped, as torchvision's
    loader does); 16-bit grey (``I;16*``, and ``I`` up to 65535) scaled from 0..65535; floating
    point (``F``) scaled from 0..1. Anything else is refused with a ``LabDataError`` naming the file."""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(img).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise LabDataError(f"{where}: a {mode} image with values from {a.min()} to {a.max()}, beyond 16 bits; "
                               "convert it to 8-bit RGB (or 16-bit grey) first")
        return Image.fromarray(np.round(a * (255 / 65535)).astype(np.uint8)).convert("RGB")
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise LabDataError(f"{where}: a floating-point (mode F) image with values outside [0, 1]; "
                               "convert it to 8-bit RGB first")
        return Image.fromarray(np.round(a * 255).astype(np.uint8)).convert("RGB")
    for route in (("RGB",), ("RGBA", "RGB"), ("LA", "RGB")):
        try:
            out = img
            for m in route:
                out = out.convert(m)
            return out
        except (ValueError, OSError):
            continue
    raise LabDataError(f"{where}: images of mode {mode!r} cannot be converted to RGB; convert it to 8-bit RGB first")


def fit_square(img, size: int):
    """``img`` (PIL) as ``size x size``: torchvision's ``Resize(size)`` then ``CenterCrop(size)`` on a
    PIL image, step for step (the shorter side resized to ``size``, the longer to
    ``int(size * long / short)``, bilinear with Pillow's antialiasing when it shrinks; the crop's
    corner at ``round`` of half the excess). An image already ``size x size`` is left as it is."""
    from PIL import Image

    w, h = img.size
    if (w, h) == (size, size):
        return img
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    img = img.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return img if (nw, nh) == (size, size) else img.crop((left, top, left + size, top + size))


def decode_image(data: bytes, where: str, size: int | None) -> np.ndarray:
    """The bytes of one image file as uint8 (3, H, W) RGB, ``size x size`` when ``size`` is given
    (``fit_square``). Raises ``LabDataError`` naming ``where`` for a file that does not decode."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:
        raise LabDataError(f"cannot decode image {where} ({type(exc).__name__}: {exc}); the file is "
                           "corrupt: replace it or fetch the dataset again.") from exc
    img = to_rgb(img, where)
    if size is not None:
        img = fit_square(img, size)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


_decode = decode_image


def _entries_from_tar(path: Path, splits, decode):
    """Yield (split, class, filename, bytes) for every image member of a tar archive (bytes
    None for splits not in ``decode``: their class names are all that is needed)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name).parts
                parts = [p for p in parts if p not in (".", "")]
                if len(parts) < 3 or parts[-3] not in splits:
                    continue
                if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                data = tar.extractfile(member).read() if parts[-3] in decode else None
                yield parts[-3], parts[-2], parts[-1], data
    except LabDataError:
        raise
    except Exception as exc:  # tarfile.ReadError, EOFError, zlib/OSError on truncated or corrupt archives
        raise LabDataError(
            f"cannot read archive {path} ({type(exc).__name__}: {exc}). The archive is truncated "
            f"or corrupt: copy it again, or point the environment variable at an extracted folder."
        ) from exc


def _entries_from_dir(path: Path, splits, decode):
    for split in splits:
        sdir = path / split
        if not sdir.is_dir():
            continue
        for cdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            for f in sorted(cdir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    yield split, cdir.name, f.name, (f.read_bytes() if split in decode else None)


def read_image_folder(path: str | Path, splits=("train", "test"), size: int | None = None,
                      decode=None) -> dict:
    """Decode the images of an image-folder source.

    Returns ``{split: {"images": uint8 (N,3,H,W), "labels": int64 (N,), "classes": [...]}}``
    for each split of ``decode`` (default: all of ``splits``) that is present. ``size``
    resizes images that are not ``size x size``. Classes are matched by name across
    ``splits``: label i is the i-th class name in sorted order in every split, and a class
    that has images in one split but not in another is an error naming it (a test split
    without a class would otherwise shift every label after it).
    """
    decode = tuple(splits if decode is None else decode)
    path = Path(path).expanduser()
    if not path.exists():
        raise LabDataError(f"image-folder source {path} does not exist; check the path "
                           "(a folder with train/<class>/* and test/<class>/*, or a .tar/.tar.gz of one).")
    entries = (_entries_from_dir(path, splits, decode) if path.is_dir()
               else _entries_from_tar(path, splits, decode))
    found: dict[str, list] = {s: [] for s in splits}
    for split, cls, fname, data in entries:
        found[split].append((cls, fname, data))
    if not any(found.values()):
        raise LabDataError(f"no images found in {path} under {'/, '.join(splits)}/<class>/; "
                           "expected train/<class>/* and test/<class>/*.")
    per_split = {s: {cls for cls, _, _ in items} for s, items in found.items() if items}
    classes = sorted(set().union(*per_split.values()))
    for split, names in per_split.items():
        missing = [c for c in classes if c not in names]
        if missing:
            where = {c: [s for s, n in per_split.items() if c in n] for c in missing[:3]}
            shown = "; ".join(f"{c!r} has images in {', '.join(f'{s}/' for s in ss)} only" for c, ss in where.items())
            raise LabDataError(f"{path}: {split}/ has no images of {len(missing)} class(es) that another split has "
                               f"({shown}). Classes are matched by name across splits: give every class images in "
                               "every split, or remove it from all of them.")
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split, items in found.items():
        if not items or split not in decode:
            continue
        items.sort(key=lambda t: (t[0], t[1]))
        images = np.stack([_decode(d, f"{path}:{split}/{c}/{f}", size) for c, f, d in items])
        labels = np.asarray([index[c] for c, _, _ in items], dtype=np.int64)
        out[split] = {"images": images, "labels": labels, "classes": classes,
                      "files": [f"{split}/{c}/{f}" for c, f, _ in items]}
    return out
