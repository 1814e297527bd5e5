"""python -m sslkit.predict --checkpoint RUN --images PATH --out DIR [--neighbours K] [...]

Uses a trained run on images: which cluster is each image in, how sure is the method, which
training images look most like it. PATH is a folder (images at any depth), a .tar/.tar.gz,
or one image file; the images are read as the run read its training images (its image size,
shorter side resized, centre square). DIR receives:

  assignments.csv  one row per image: image, cluster, confidence (the method's probability of
                   that cluster), the same for every further clustering head (cluster_h1, ...;
                   SeLa has several), then its nearest training images by cosine similarity of
                   the backbone features (neighbour_1, similarity_1, ...)
  features.npy     float32 (N, D): the backbone features, in the CSV's order
  gallery/index.html and gallery/thumbs/: the clusters (first head) largest first, up to
                   --per_cluster thumbnails each, most confident first; a static page
  predict.json     what was done: checkpoint, method, image size, counts

A method without clusters of its own (NPID) gets k-means (K = --clusters) on the L2-normalised
features of the training images (or of the images, with --neighbours=0), with no confidence.
Every option and the checkpoint are checked before any image is read; DIR is written whole at
the end (a DIR an earlier predict wrote is replaced; a folder with other files is refused).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

MARKER = ".sslkit-predict"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        from .config import ConfigError

        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m sslkit.predict", description=__doc__.split("\n\n")[1],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a run directory of sslkit.train (its last.pt) or a .pt in it")
    p.add_argument("--images", required=True, help="a folder or .tar(.gz) of images (any depth), or one image")
    p.add_argument("--out", required=True, help="the folder to write (new, empty, or an earlier predict's)")
    p.add_argument("--neighbours", type=int, default=5, help="nearest training images per image (0: none)")
    p.add_argument("--train_dataset", default=None, help="where the run's training images are now, if they moved")
    p.add_argument("--clusters", type=int, default=10, help="K of the k-means for a method without clusters")
    p.add_argument("--per_cluster", type=int, default=36, help="thumbnails per cluster in the gallery")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--workers", type=int, default=-1, help="processes decoding images (-1: one per core)")
    p.add_argument("--batch_size", type=int, default=256)
    return p


def _check_out(out: Path) -> None:
    from .run_plan import check_output_dir
    from .runs import RunDirError

    check_output_dir(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        names = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise RunDirError(f"--out={out} holds files predict did not write ({names}); choose a new or empty folder")


def _checks(args):
    """Everything that can be checked before an image is decoded: (run, images source, out)."""
    import labdata

    from .config import ConfigError
    from .device import pick_device
    from .runs import load_run

    for key in ("neighbours", "clusters", "per_cluster", "batch_size"):
        if getattr(args, key) < (0 if key == "neighbours" else 1):
            raise ConfigError(f"--{key}={getattr(args, key)}: must be at least {0 if key == 'neighbours' else 1}")
    if args.workers < -1:
        raise ConfigError(f"--workers={args.workers}: -1 (one per core), 0 or a number of processes")
    out = Path(args.out).expanduser()
    _check_out(out)
    files = labdata.scan_images(args.images, what="--images")
    ckpt = Path(args.checkpoint).expanduser()
    if not ckpt.exists():
        raise ConfigError(f"--checkpoint={ckpt}: no such run directory or file")
    run = load_run(ckpt)
    if run is None:
        raise ConfigError(f"--checkpoint={ckpt}: no checkpoint there (checkpoints/last.pt); give a run directory of "
                          "sslkit.train")
    if args.train_dataset is not None:
        run.config.dataset = str(Path(args.train_dataset).expanduser())
    if args.neighbours and run.config.dataset not in labdata.datasets() and \
            not Path(run.config.dataset).expanduser().exists():
        raise ConfigError(f"the run's training images ({run.config.dataset}) are not there: give --train_dataset=PATH "
                          "where they are now, or --neighbours=0")
    try:
        device = pick_device(None if args.device == "auto" else args.device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--device={args.device}: {exc}") from None
    return run.to(device), files, out


def _training_features(run, workers: int, batch_size: int):
    """(features, names) of the run's training images, checked to be the images it trained on."""
    from .config import ConfigError
    from .data import RunData, load_training

    run.config.workers = workers
    train, _ = load_training(run.config)
    got = RunData(train, None, not torch.is_tensor(train.images)).data_id(run.config.dataset)["fingerprint"]
    want = run.data.get("fingerprint")
    if want and got != want:
        raise ConfigError(f"the training images at {run.config.dataset} are not the ones the run trained on (data "
                          f"{got}, the run's {want}): give --train_dataset=PATH, or --neighbours=0")
    names = train.names if hasattr(train, "names") else [str(i) for i in range(len(train))]
    return run.features(train.images, batch_size), names


def _neighbours(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int = 1024):
    """(similarities, indices) of the ``k`` most cosine-similar rows of ``bank`` for each row of ``query``."""
    import torch.nn.functional as F

    bank = F.normalize(bank.float(), dim=1)
    sims, idx = [], []
    for i in range(0, len(query), chunk):
        s, j = (F.normalize(query[i:i + chunk].float(), dim=1) @ bank.T).topk(min(k, len(bank)), dim=1)
        sims.append(s)
        idx.append(j)
    return torch.cat(sims), torch.cat(idx)


def _kmeans_clusters(feats: torch.Tensor, bank: torch.Tensor | None, k: int) -> torch.Tensor:
    import torch.nn.functional as F

    from .cluster import kmeans

    fit_on = F.normalize((bank if bank is not None else feats).float(), dim=1)
    if k > len(fit_on):
        from .config import ConfigError

        raise ConfigError(f"--clusters={k} is more than the {len(fit_on)} images to cluster; use fewer")
    res = kmeans(fit_on, k, iters=50, seed=0)
    x = F.normalize(feats.float(), dim=1)
    return (2 * x @ res.centroids.t() - res.centroids.pow(2).sum(1)).argmax(1)


def _write_csv(path: Path, names, clusters, conf, nb) -> None:
    heads = clusters.shape[1]
    header = ["image"] + [f"{c}{'' if h == 0 else f'_h{h}'}" for h in range(heads) for c in ("cluster", "confidence")]
    if nb is not None:
        header += [f"{c}_{i + 1}" for i in range(nb[0].shape[1]) for c in ("neighbour", "similarity")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r, name in enumerate(names):
            row = [name]
            for h in range(heads):
                c = float(conf[r, h])
                row += [int(clusters[r, h]), "" if c != c else f"{c:.4f}"]
            if nb is not None:
                for s, j in zip(nb[0][r].tolist(), nb[1][r].tolist()):
                    row += [nb[2][j], f"{s:.4f}"]
            w.writerow(row)


def predict(args) -> dict:
    """Run the checks, then write the folder ``args.out``; returns what ``predict.json`` holds."""
    import numpy as np

    from .gallery import write_gallery
    from .imagesource import default_workers

    run, files, out = _checks(args)
    workers = default_workers() if args.workers < 0 else args.workers
    images = run.images(args.images, workers)  # headers only; a file that fails to decode later stops with its name
    skipped = images.skipped
    if skipped:
        print(f"skipped {len(skipped)} files of {files.root} that are not images or do not open: "
              f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}")
    feats, found = run.scan(images, args.batch_size, workers)
    bank = nb = None
    if args.neighbours:
        bank, train_names = _training_features(run, workers, args.batch_size)
        sims, idx = _neighbours(feats, bank, args.neighbours)
        nb = (sims, idx, train_names)
    note = f"The clusters are {run.info.get('method')}'s own (head 0 of {found.clusters.shape[1]})." if found else ""
    if found is None:
        found_clusters = _kmeans_clusters(feats, bank, args.clusters)[:, None]
        conf = torch.full(found_clusters.shape, float("nan"))
        note = (f"{run.info.get('method')} has no clusters of its own: k-means (K={args.clusters}) on the features "
                f"of {'the training images' if bank is not None else 'these images'}.")
    else:
        found_clusters, conf = found.clusters, found.confidence
    names = images.names if hasattr(images, "names") else [str(i) for i in range(len(feats))]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / MARKER).write_text("written by python -m sslkit.predict\n")
        _write_csv(tmp / "assignments.csv", names, found_clusters, conf, nb)
        np.save(tmp / "features.npy", feats.numpy().astype(np.float32))
        write_gallery(tmp / "gallery", found_clusters[:, 0], conf[:, 0], names, lambda pos: images[pos],
                      title=f"{len(names)} images, {run.info.get('method')} ({run.path})", note=note,
                      per_cluster=args.per_cluster)
        record = {"checkpoint": str(run.path), "epoch": run.epoch, "method": run.info.get("method"),
                  "image_size": run.image_size, "images": len(names), "skipped_files": skipped,
                  "heads": int(found_clusters.shape[1]),
                  "clusters_used": int(torch.unique(found_clusters[:, 0]).numel()),
                  "neighbours": args.neighbours, "feature_dim": int(feats.shape[1]), "note": note}
        (tmp / "predict.json").write_text(json.dumps(record, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    import labdata

    from .config import ConfigError
    from .runs import CheckpointError, RunDirError

    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
        record = predict(args)
    except (ConfigError, labdata.LabDataError, CheckpointError, RunDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser()
    print(f"{record['images']} images -> {out / 'assignments.csv'}, {out / 'features.npy'}, "
          f"{out / 'gallery' / 'index.html'} ({record['clusters_used']} clusters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
