"""Where labdata keeps files, and the decoded-tensor cache.

The cache folder is ``$LABDATA_DIR`` when set, else ``data/`` at the repository root
(git-ignored). Official downloads live in ``raw/``; decoded splits in ``tensors/`` as
``.pt`` files (uint8 images, int64 labels) that load memory-mapped in well under a second.
Every file is written to a temporary name and renamed into place, so an interrupted
run never leaves a half-written cache entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


def cache_root() -> Path:
    env = os.environ.get("LABDATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


def raw_root() -> Path:
    return cache_root() / "raw"


def tensor_path(name: str, split: str, source_key: str) -> Path:
    return cache_root() / "tensors" / f"{name}-{split}-{source_key}.pt"


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the result to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_split(path: Path, payload: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_split(path: Path) -> dict | None:
    """The cached split, or None when absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, mmap=True, weights_only=True)
        images, labels = payload["images"], payload["labels"]
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError("malformed cache entry")
        return payload
    except Exception:
        path.unlink(missing_ok=True)
        return None


def save_json(path: Path, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f)
    atomic_write(path, write)
