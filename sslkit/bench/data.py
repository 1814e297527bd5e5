"""``python -m sslkit.bench data``: how fast the streaming path decodes images, per worker process.

A streamed run (``--stream``, or data above ``--stream_above_gb``) decodes every image of a
batch in DataLoader worker processes (``labdata.FileImages``: read the file, decode, shorter
side resized to S, centre square) while the device trains on the previous batches. The
device waits when the workers together decode fewer images per second than a training step
consumes: this benchmark measures the decoded images per second of 1 worker and of several,
at each side S (96 and 224 px by default), so that

    workers needed ~ (the step's images/s, from ``bench train``) / (images/s per worker)

Images: ``--images`` (a folder or .tar of your own images; the figure depends on their size
and format), else photograph-like JPEGs generated once into a temporary folder (500 x 375,
ImageNet's most common size, quality 90: smooth colour fields with texture, about 60 KB each).
Each figure is the rate over ``--per-worker`` images per worker after the workers have started
(the first batches are not timed), the fastest of ``--repeats`` passes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_jpegs(folder: Path, n: int = 64, size=(500, 375), seed: int = 0) -> Path:
    """``n`` photograph-like JPEGs (smooth random colour fields plus fine texture) in ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
        texture = rng.normal(0, 12, (size[1], size[0], 3))
        img = np.clip(np.asarray(coarse, dtype=np.float64) + texture, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def decode_rate(files, size: int, workers: int, per_worker: int, batch_size: int = 32, repeats: int = 2) -> float:
    """Decoded images/s of ``workers`` processes (0: this one) at ``size`` px: the fastest of
    ``repeats`` passes over ``per_worker`` images per worker, after the first batches."""
    from labdata import FileImages

    from ..imagesource import ImageSource

    n = per_worker * max(1, workers)
    source = ImageSource(FileImages(files, size), size, workers)
    order = [[i % len(files) for i in range(s, s + batch_size)] for s in range(0, n + 2 * batch_size * max(1, workers),
                                                                                   batch_size)]
    best = 0.0
    for _ in range(repeats):
        it = source.loader(order)
        for _ in range(max(1, workers)):  # one batch per worker: they have all started
            next(it)
        t, done = time.perf_counter(), 0
        for batch in it:
            done += len(batch)
        best = max(best, done / (time.perf_counter() - t))
    return best


def bench_data(images: str | None, sizes, workers_list, per_worker: int, repeats: int) -> list[dict]:
    from labdata import scan_images

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers_list = workers_list or sorted({1, max(1, cores // 2), cores})
    with tempfile.TemporaryDirectory(prefix="sslkit-bench-data-") as tmp:
        root = Path(images) if images else synthetic_jpegs(Path(tmp) / "jpegs")
        files = scan_images(root, what="--images")
        mean_kb = sum(files.sizes) / len(files) / 1024
        print(f"# decoded images/s of the streaming path (labdata.FileImages in DataLoader workers)\n"
              f"# images: {'your ' + str(root) if images else 'synthetic 500x375 JPEGs, quality 90'} "
              f"({len(files)} files, {mean_kb:.0f} KB on average); {cores} CPU cores here, torch threads "
              f"{torch.get_num_threads()}\n"
              f"{'side':>5} {'workers':>8} {'images/s':>10} {'per worker':>11}")
        rows = []
        for size in sizes:
            for w in workers_list:
                rate = decode_rate(files, size, w, per_worker, repeats=repeats)
                rows.append({"size": size, "workers": w, "images_per_s": rate, "per_worker": rate / max(1, w)})
                print(f"{size:>5} {w:>8} {rate:>10.0f} {rate / max(1, w):>11.0f}", flush=True)
    print("# workers that keep a device fed: the training step's images/s (python -m sslkit.bench train) divided by "
          "the per-worker rate at the run's side")
    return rows
