"""Stored results of sweeps: one run per line in ``chapters/results/runs.jsonl``, and the table
(mean ± sample standard deviation over seeds) built from them -- for chapter 07, the README
and ``python -m sslkit.sweep``."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

__all__ = ["RESULTS", "read_results", "write_results", "results_table", "welch_t", "table_markdown", "readme_table",
           "update_readme"]

RANDOM = "random"  # the untrained network: no training, the same evaluation
PIXELS = "pixels"  # the standardised pixels as features
BASELINES = (PIXELS, RANDOM)
RESULTS = Path("chapters/results/runs.jsonl")
README_BEGIN, README_END = "<!-- results-table:begin -->", "<!-- results-table:end -->"


def read_results(path: Path = RESULTS) -> list[dict]:
    path = Path(path)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def write_results(lines: list[dict], path: Path = RESULTS) -> None:
    """runs.jsonl (sorted, one run per line) and the table beside it as JSON, CSV and Markdown."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = {m: i for i, m in enumerate([*BASELINES, *_methods()])}
    lines = sorted(lines, key=lambda r: (r["dataset"], r["budget"], order.get(r["method"], 99), r.get("variant", ""),
                                         r["seed"]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lines))
    os.replace(tmp, path)
    table = results_table(lines)
    (path.parent / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    with open(path.parent / "table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["method"])
        w.writeheader()
        w.writerows(table)
    (path.parent / "table.md").write_text(table_markdown(table) + "\n\n" + table_markdown(table, "clusters") + "\n")


def _mean_std(values) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return round(m, 4), round(s, 4)


# the per-run numbers a table row averages: representation (kNN, linear probe), the method's own clusters
# (NMI, ARI, majority-vote accuracy), k-means with K = classes on its features, and time
NUMBERS = ("knn_acc", "linear_acc", "nmi", "ari", "cluster_acc", "kmeans_nmi", "kmeans_ari", "kmeans_acc", "wall_s",
           "train_s", "images_per_s")


def results_table(lines: list[dict]) -> list[dict]:
    """Mean and (sample) standard deviation over seeds, per (dataset, budget, method, variant);
    runs of another number of epochs or another precision (a preset changed between them) get
    their own row."""
    groups: dict[tuple, list[dict]] = {}
    for r in lines:
        trained = (r["epochs"], _precision(r) if r["epochs"] else "")
        groups.setdefault((r["dataset"], r["budget"], r["method"], r.get("variant", ""), *trained), []).append(r)
    rows = []
    for (dataset, budget, method, variant, *_), rs in groups.items():
        row = {"dataset": dataset, "budget": budget, "method": method, "variant": variant, "epochs": rs[0]["epochs"],
               "seeds": len(rs)}
        for key in NUMBERS:
            row[key], row[key + "_std"] = _mean_std(r.get(key) for r in rs)
        row["num_clusters"] = rs[0].get("num_clusters")
        row["device"] = ", ".join(sorted({r.get("device_name") or r["device"] for r in rs}))
        row["precision"] = ", ".join(sorted({_precision(r) for r in rs}))
        row["git_sha"] = ", ".join(sorted({r["git_sha"][:12] for r in rs}))
        rows.append(row)
    return rows


def welch_t(a: dict, b: dict, key: str = "knn_acc") -> float | None:
    """Welch's t of the difference of two ``results_table`` rows' means of ``key``:
    (m_a - m_b) / sqrt(s_a^2/n_a + s_b^2/n_b) with the rows' sample standard deviations over
    their seeds. None when either row has fewer than two seeds or no value; +-inf when both
    spreads are zero and the means differ."""
    if a["seeds"] < 2 or b["seeds"] < 2 or a.get(key) is None or b.get(key) is None:
        return None
    diff = a[key] - b[key]
    se = math.sqrt(a[key + "_std"] ** 2 / a["seeds"] + b[key + "_std"] ** 2 / b["seeds"])
    if se == 0:
        return math.copysign(math.inf, diff) if diff else 0.0
    return diff / se


def welch_df(a: dict, b: dict, key: str = "knn_acc") -> float | None:
    """Welch-Satterthwaite degrees of freedom of ``welch_t(a, b, key)``:
    (v_a + v_b)^2 / (v_a^2/(n_a - 1) + v_b^2/(n_b - 1)) with v = s^2/n. None where ``welch_t``
    is None; inf when both spreads are zero."""
    if welch_t(a, b, key) is None:
        return None
    va, vb = (r[key + "_std"] ** 2 / r["seeds"] for r in (a, b))
    if va + vb == 0:
        return math.inf
    return (va + vb) ** 2 / (va ** 2 / (a["seeds"] - 1) + vb ** 2 / (b["seeds"] - 1))


def _precision(line: dict) -> str:
    """What a stored run trained in: its record, else its config (lines from before the record)."""
    return line.get("precision") or (line.get("config") or {}).get("precision", "fp32")


BASELINE_NAMES = {PIXELS: "pixels (standardised)", RANDOM: "random ConvNet (untrained)"}


def _methods() -> list[str]:
    from .registry import method_names

    return method_names()


def display_name(method: str) -> str:
    """How tables call a method: its class's ``title``, or the baseline's name."""
    from .registry import METHODS, load_plugins

    load_plugins()
    return BASELINE_NAMES.get(method) or getattr(METHODS.get(method), "title", method)


def _pm(row, key, digits=1):
    if row.get(key) is None:
        return "–"
    return f"{row[key]:.{digits}f} ± {row[key + '_std']:.{digits}f}" if row["seeds"] > 1 else f"{row[key]:.{digits}f}"


def _budget(row) -> str:
    trained = f", {row['precision']}" if row["epochs"] and row.get("precision") else ""
    return f"{row['budget']}, {row['epochs']} epochs{trained}"


def _name(row) -> str:
    seeds = f"{row['seeds']}" + (" (single run)" if row["seeds"] == 1 else "")
    return (display_name(row["method"]) + (f" ({row['variant']})" if row.get("variant") else "")), seeds


def _pct(row, key):
    """A 0-1 score's row as percent (NMI, ARI)."""
    return dict(row, **{key: None if row.get(key) is None else 100 * row[key],
                        key + "_std": None if row.get(key + "_std") is None else 100 * row[key + "_std"]})


def table_markdown(table: list[dict], kind: str = "features") -> str:
    """The results as a Markdown table. ``kind="features"``: kNN, linear probe and training time;
    ``kind="clusters"``: the method's own clusters (K, NMI, ARI, majority-vote accuracy) and k-means with
    K = classes on its features (NMI, ARI, one-to-one accuracy)."""
    if kind == "clusters":
        head = ("| data | budget | method | seeds | own clusters K | NMI (%) | ARI (%) | majority acc. (%) "
                "| k-means, K = classes: NMI (%) | ARI (%) | acc. (%) |\n|---|---|---|---|---|---|---|---|---|---|---|")
        body = []
        for row in table:
            name, seeds = _name(row)
            own, km = _pct(_pct(row, "nmi"), "ari"), _pct(_pct(row, "kmeans_nmi"), "kmeans_ari")
            body.append(f"| {row['dataset']} | {_budget(row)} | {name} | {seeds} | {row.get('num_clusters') or '–'} "
                        f"| {_pm(own, 'nmi')} | {_pm(own, 'ari')} | {_pm(row, 'cluster_acc')} | {_pm(km, 'kmeans_nmi')} "
                        f"| {_pm(km, 'kmeans_ari')} | {_pm(row, 'kmeans_acc')} |")
        foot = ("\n\nOwn clusters: the method's clustering of the test images (its best head), scored against the "
                "classes; majority accuracy labels each cluster by its most frequent class (many-to-one, so read it "
                "beside K). k-means: K = classes clusters of the L2-normalised features, fitted on the training "
                "images, accuracy after the best one-to-one matching of clusters to classes.")
        return head + "\n" + "\n".join(body) + foot
    head = ("| data | budget | method | seeds | kNN top-1 (%) | linear probe (%) | training time (s)¹ |"
            "\n|---|---|---|---|---|---|---|")
    body = []
    for row in table:
        name, seeds = _name(row)
        body.append(f"| {row['dataset']} | {_budget(row)} | {name} | {seeds} | {_pm(row, 'knn_acc')} "
                    f"| {_pm(row, 'linear_acc')} | {_pm(row, 'train_s', 0)} |")
    foot = ("\n\n¹ epochs x the median epoch time (without the evaluation), which a few epochs slowed by other "
            "jobs on a shared machine do not move; `wall_s` in runs.jsonl is the measured sum.")
    return head + "\n" + "\n".join(body) + foot


def readme_table(results: Path = RESULTS) -> str:
    """The README's block: the table and the machines that produced it, from the stored runs."""
    lines = read_results(results)
    devices = sorted({f"{r.get('device_name') or r['device']} ({r.get('threads')} threads)" for r in lines})
    return (f"{README_BEGIN}\n{table_markdown(results_table(lines))}\n\n"
            f"Mean ± standard deviation over seeds, from `{RESULTS}` ({len(lines)} runs; "
            f"device: {'; '.join(devices)}). Generated by `python -m sslkit.sweep readme`.\n{README_END}")


def update_readme(readme: Path = Path("README.md"), results: Path = RESULTS) -> bool:
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        from .config import ConfigError

        raise ConfigError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    a, rest = text.split(README_BEGIN, 1)
    _, b = rest.split(README_END, 1)
    new = a + readme_table(results) + b
    changed = new != text
    readme.write_text(new)
    return changed
