"""One line of ``runs.jsonl`` from a finished run directory: its results, curve, config and
device, the method's own clusters against the classes, and UMAP points for the chapters."""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path

import torch

from .results import BASELINES

UMAP_POINTS = 1000  # test images embedded per run for the chapter's side-by-side UMAPs


def _cluster_summary(method, test) -> dict:
    """The method's own clusters against the classes on the test images, for its best head
    (highest NMI): NMI, ARI, majority-vote accuracy (and the one-to-one accuracy when K equals
    the number of classes), K and the clusters used, and how each class is spread over clusters."""
    from .eval import contingency
    from .eval.report import head_scores

    heads = method.predict_clusters(test.images)
    if not heads:
        return {}
    scores = head_scores(heads, test.labels, method.cluster_count(method.params))
    best = max(range(len(heads)), key=lambda i: scores[i]["nmi"])
    table = contingency(heads[best].cpu(), test.labels.cpu())  # used clusters x classes
    per_class = table / table.sum(0, keepdim=True)
    # how each class is spread: its largest cluster's share, and how many clusters hold >= 10 % of it
    out = {"nmi": scores[best]["nmi"], "ari": scores[best]["ari"], "cluster_acc": scores[best]["majority_acc"],
           "cluster_hungarian_acc": scores[best]["hungarian_acc"], "num_clusters": scores[best]["k"],
           "used_clusters": scores[best]["used_clusters"],
           "class_top_share": [round(float(v), 4) for v in per_class.max(0).values],
           "class_clusters_10pct": [int(v) for v in (per_class >= 0.1).sum(0)]}
    if table.shape[1] <= 20:  # the whole table for small class counts (CIFAR-10, SVHN)
        out["contingency"] = table.long().tolist()
    return out


_DATA: dict = {}


def summarise_run(cell, root: Path, umap: bool = False) -> dict:
    """One line of runs.jsonl from a finished run directory."""
    out = cell.run_dir(root)
    cfg = json.loads((out / "config.json").read_text())
    res = json.loads((out / "results.json").read_text())
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()] \
        if (out / "metrics.jsonl").exists() else []
    elapsed = 0.0
    curve = []
    for rec in metrics:
        elapsed += rec.get("epoch_time_s", 0.0)
        curve.append({"epoch": rec["epoch"], "time_s": round(elapsed, 2), "knn_acc": rec.get("knn_acc"),
                      "loss": rec.get("loss")})
    line = {"method": cell.method, "dataset": cell.dataset, "budget": cell.budget, "epochs": cfg["epochs"],
            "seed": cell.seed, "knn_acc": res["knn_acc"], "linear_acc": res.get("linear_acc"),
            "wall_s": round(elapsed, 2),  # the epochs' measured times, summed
            # epochs x the median epoch time: robust to a few epochs slowed by other jobs on a shared machine
            "train_s": round(len(metrics) * statistics.median(r["epoch_time_s"] for r in metrics), 2) if metrics else 0.0,
            "images_per_s": round(sum(r["images_per_s"] for r in metrics) / len(metrics), 1) if metrics else None,
            "device": res.get("device", "cpu"),
            "precision": res.get("precision", cfg.get("precision", "fp32")),  # what the run trained in ("auto" resolved)
            "device_name": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "git_sha": (out / "git_sha.txt").read_text().strip(),
            "train_images": res.get("train_images"), "test_images": res.get("test_images"),
            "curve": curve, "config": cfg}
    km = res.get("kmeans_classes")
    if km:  # k-means with K = classes on the network's features, for every network
        line.update(kmeans_nmi=km["nmi"], kmeans_ari=km["ari"], kmeans_acc=km["hungarian_acc"])
    if cell.variant:  # what the variant changed, beside the whole config
        line["variant"], line["variant_options"] = cell.variant, list(cell.extra)
    try:
        with open("/proc/cpuinfo") as f:
            names = [x.split(":", 1)[1].strip() for x in f if x.startswith("model name")]
        line["device_name"] = names[0] if names else line["device_name"]
    except OSError:
        pass
    if cell.method not in BASELINES:
        from .config import config_from_dict
        from .data import load_data
        from .runs import load_run

        method, _, _ = load_run(out)
        data_key = (cfg["dataset"], str(cfg["subset"]))
        if data_key not in _DATA:  # one decoding per data set when many runs are summarised
            _DATA.clear()
            _DATA[data_key] = load_data(config_from_dict(cfg))
        train, test = _DATA[data_key]
        line.update(_cluster_summary(method.eval(), test))
        if umap:
            line["umap"] = _umap_points(method, test)
    return line


def _umap_points(method, test) -> dict:
    import torch

    from .backbones import extract_features
    from .eval import embed_umap

    n = min(UMAP_POINTS, len(test))
    idx = torch.linspace(0, len(test) - 1, n).round().long()  # evenly spread over the test set
    feats = extract_features(method.backbone, test.images[idx])
    xy = embed_umap(feats, seed=0)
    heads = method.predict_clusters(test.images[idx]) or []
    return {"index": idx.tolist(), "xy": [[round(float(a), 3), round(float(b), 3)] for a, b in xy],
            "labels": test.labels[idx].tolist(), "clusters": heads[0].tolist() if heads else None}
