"""A grid of runs through ``python -m sslkit.train``, and one results table from them.

    python -m sslkit.sweep run --methods random supervised sela deepcluster swav npid \\
        --datasets cifar10 cifar100 --seeds 0 1 2 --budget lab
    python -m sslkit.sweep table             # mean +- std per (dataset, budget, method), from the stored runs
    python -m sslkit.sweep readme            # rewrite the README's results table from the same source

Each cell of the grid (method, dataset, budget, seed) is one run directory under ``--root``
(``runs/sweep/<dataset>-<budget>/<method>-seed<S>``), trained by ``sslkit.train``'s own
command in a child process. A finished run (``results.json``) is skipped; a killed one is
resumed from its checkpoint by the same command. After each run its line is written into
``--results`` (``chapters/results/runs.jsonl``: one run per line, with the run's whole
config, so any line is re-run by ``python -m sslkit.sweep rerun LINE``), and the table is
rewritten beside it (``table.json``, ``table.csv``, ``table.md``).

A **budget** gives every method the same number of epochs of its ``lab`` preset (the
chapters' runs) -- the one thing that differs between methods is the method. ``random`` is
the untrained ConvNet of the supervised preset (no training: the floor).

A **variant** is a named change of the presets for an ablation, e.g.
``--variant hard_codes -- --params.hard_codes=true``: its runs get their own directories
(``<method>-<variant>-seed<S>``) and their own rows in the table, beside the plain method's;
the stored line keeps the variant's name and options.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .methods.base import LAB_EPOCHS
from .results import (README_BEGIN, README_END, RANDOM, RESULTS, read_results, readme_table, results_table,  # noqa: F401
                      table_markdown, update_readme, write_results)

__all__ = ["BUDGETS", "Cell", "plan", "sweep", "rerun", "run_cell", "summarise_run", "read_results", "write_results",
           "results_table", "table_markdown", "readme_table", "update_readme", "main"]

BUDGETS = {  # name -> (preset, epochs): the same epochs for every method
    "lab": ("lab", LAB_EPOCHS),
    "long": ("lab", 100),
}
UMAP_POINTS = 1000  # test images embedded per run for the chapter's side-by-side UMAPs


@dataclass
class Cell:
    method: str
    dataset: str
    budget: str
    seed: int
    extra: list[str] = field(default_factory=list)  # further --key=value options for sslkit.train
    variant: str = ""  # a name for what ``extra`` changes (e.g. "hard_codes"): its own run directory and table row

    @property
    def key(self) -> tuple:
        return self.method, self.dataset, self.budget, self.seed, self.variant

    def run_dir(self, root: Path) -> Path:
        name = f"{self.method}-{self.variant}" if self.variant else self.method
        return Path(root) / f"{self.dataset}-{self.budget}" / f"{name}-seed{self.seed}"

    def train_args(self, root: Path) -> list[str]:
        preset, epochs = BUDGETS[self.budget]
        args = [f"--method={self.method}", f"--preset={preset}", f"--epochs={epochs}", f"--seed={self.seed}",
                f"--dataset={self.dataset}", f"--output_dir={self.run_dir(root)}"]
        if self.method == "supervised" and self.dataset in _known_datasets():  # its head: one output per class
            args.append(f"--params.num_classes={_known_datasets()[self.dataset]}")
        return args + list(self.extra)


def _known_datasets() -> dict:
    from labdata import registry

    return {name: spec.num_classes for name, spec in registry.SPECS.items()}


def line_key(line: dict) -> tuple:
    """A stored line's cell: (method, dataset, budget, seed, variant)."""
    return line["method"], line["dataset"], line["budget"], line["seed"], line.get("variant", "")


def plan(methods, datasets, seeds, budget: str, extra=(), variant: str = "") -> list[Cell]:
    """Every (method, dataset, seed) of the grid; checked before any run starts."""
    import re

    from .methods import METHODS

    if variant and not re.fullmatch(r"[a-z0-9_]+", variant):
        raise SystemExit(f"sslkit.sweep: --variant={variant!r}: use lower-case letters, digits and _ only")
    if variant and not extra:
        raise SystemExit(f"sslkit.sweep: --variant={variant} names a change, but no options follow: give them "
                         f"after --, e.g. --variant={variant} -- --params.hard_codes=true")
    if budget not in BUDGETS:
        raise SystemExit(f"sslkit.sweep: unknown --budget={budget}; choose one of {sorted(BUDGETS)}")
    for m in methods:
        if m != RANDOM and m not in METHODS:
            raise SystemExit(f"sslkit.sweep: unknown method {m!r}; choose among {[RANDOM, *sorted(METHODS)]}")
    return [Cell(m, d, budget, int(s), list(extra), variant) for d in datasets for s in seeds for m in methods]


def _random_run(cell: Cell, root: Path, device: str) -> None:
    """The untrained ConvNet of the supervised lab preset, evaluated like a trained run."""
    from .config import TrainConfig, apply_preset, parse_overrides, set_value
    from .eval import evaluate_method
    from .methods import METHODS, build_method
    from .runs import RunDir
    from .train import load_data

    cfg = apply_preset(TrainConfig(method="supervised", params=METHODS["supervised"].Params()),
                       BUDGETS[cell.budget][0])
    for key, value in parse_overrides(cell.extra).items():  # the grid's options that concern data and evaluation
        if key in ("subset", "knn_k", "knn_temperature", "backbone"):
            set_value(cfg, key, value)
    cfg.dataset, cfg.seed, cfg.epochs, cfg.device = cell.dataset, cell.seed, 1, device
    cfg.precision = "fp32"  # nothing is trained; the evaluation is fp32
    train, test = load_data(cfg)
    method = build_method(cfg, len(train))
    results = evaluate_method(method, train.images, train.labels, test.images, test.labels, knn_k=cfg.knn_k,
                              knn_temperature=cfg.knn_temperature)
    results.pop("heads", None), results.pop("best_head_nmi", None)  # a random classifier is not a clustering
    run = RunDir(cell.run_dir(root))  # the record a trained run writes: config, git SHA, results
    run.lock()
    cfg.epochs = 0
    run.write_config(cfg.to_dict())
    run.write_results(dict(results, device=device))
    run.unlock()


def run_cell(cell: Cell, root: Path, device: str = "cpu", inprocess: bool = False) -> float:
    """Train (or resume) one cell through ``sslkit.train`` -- in a child process, or with ``inprocess`` in
    this one (``sslkit.train.main``, the same code); seconds spent. Raises on failure."""
    t0 = time.time()
    if cell.method == RANDOM:
        _random_run(cell, root, device)
        return time.time() - t0
    args = [*cell.train_args(root), f"--device={device}"]
    if inprocess:
        from .train import main as train_main

        code = train_main(args)
    else:
        code = subprocess.run([sys.executable, "-m", "sslkit.train", *args]).returncode
    if code != 0:
        raise RuntimeError(f"run failed (exit {code}): python -m sslkit.train {' '.join(args)}")
    return time.time() - t0


def _cluster_summary(method, test) -> dict:
    """Clusters against classes on the test images, for the best head (highest NMI)."""
    from .eval import clustering_metrics, contingency

    heads = method.predict_clusters(test.images)
    if not heads:
        return {}
    scores = [clustering_metrics(h.cpu(), test.labels.cpu()) for h in heads]
    best = max(range(len(heads)), key=lambda i: scores[i]["nmi"])
    k = getattr(method.params, "num_clusters", None) or getattr(method.params, "num_prototypes", None) \
        or int(heads[best].max()) + 1  # the method's K (some clusters may be empty on the test images)
    table = contingency(heads[best].cpu(), test.labels.cpu())  # used clusters x classes
    per_class = table / table.sum(0, keepdim=True)
    # how each class is spread: its largest cluster's share, and how many clusters hold >= 10 % of it
    out = {"nmi": scores[best]["nmi"], "ari": scores[best]["ari"], "cluster_acc": scores[best]["acc"],
           "num_clusters": k, "used_clusters": int(table.shape[0]),
           "class_top_share": [round(float(v), 4) for v in per_class.max(0).values],
           "class_clusters_10pct": [int(v) for v in (per_class >= 0.1).sum(0)]}
    if table.shape[1] <= 20:  # the whole table for small class counts (CIFAR-10, SVHN)
        out["contingency"] = table.long().tolist()
    return out


_DATA: dict = {}


def summarise_run(cell: Cell, root: Path, umap: bool = False) -> dict:
    """One line of runs.jsonl from a finished run directory."""
    import platform

    import torch

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
    if cell.variant:  # what the variant changed, beside the whole config
        line["variant"], line["variant_options"] = cell.variant, list(cell.extra)
    try:
        with open("/proc/cpuinfo") as f:
            names = [x.split(":", 1)[1].strip() for x in f if x.startswith("model name")]
        line["device_name"] = names[0] if names else line["device_name"]
    except OSError:
        pass
    if cell.method != RANDOM:
        from .config import config_from_dict
        from .runs import load_run
        from .train import load_data

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


def _fmt(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _stale_runs(cells: list[Cell], root: Path, device: str) -> list[str]:
    """Run directories of the grid that hold another config than the cell trains now (a preset
    or a budget changed since): they would be skipped or resumed as they are."""
    from .train import _config_diff, _with_defaults, build_config

    out = []
    for cell in cells:
        saved = cell.run_dir(root) / "config.json"
        if cell.method == RANDOM or not saved.exists():
            continue
        want = build_config([*cell.train_args(root), f"--device={device}"])[0]
        diffs = _config_diff(_with_defaults(json.loads(saved.read_text())),
                             json.loads(json.dumps(want.to_dict(), default=str)))
        if diffs:
            out.append(f"{cell.run_dir(root)}: {'; '.join(diffs[:3])}")
    return out


def sweep(cells: list[Cell], root: Path, results: Path, device: str = "cpu", umap_seed: int | None = 0,
          inprocess: bool = False) -> None:
    """Run every cell not yet finished, in order, writing its line and the table after each.
    A run directory that holds another config than its cell trains now is refused first."""
    stale = _stale_runs(cells, root, device)
    if stale:
        raise SystemExit("sslkit.sweep: these run directories hold another config than the grid trains now "
                         "(a preset or budget changed since they ran); move them away or choose another --root:\n  "
                         + "\n  ".join(stale))
    lines = {line_key(r): r for r in read_results(results)}
    t_start, done_here = time.time(), 0
    for i, cell in enumerate(cells, 1):
        out = cell.run_dir(root)
        finished = (out / "results.json").exists()
        if finished and cell.key in lines:
            print(f"[{i}/{len(cells)}] {cell.method} {cell.dataset} {cell.budget} seed {cell.seed}: done, skipped",
                  flush=True)
            continue
        left = len(cells) - i + 1
        eta = (time.time() - t_start) / done_here * left if done_here else None
        print(f"[{i}/{len(cells)}] {cell.method} {cell.dataset} {cell.budget} seed {cell.seed} -> {out}"
              + (f" (ETA for the {left} left: {_fmt(eta)})" if eta else ""), flush=True)
        if not finished:
            run_cell(cell, root, device, inprocess)
            done_here += 1
        umap = cell.seed == umap_seed and cell.method != RANDOM and cell.dataset in ("cifar10", "svhn")  # 10 classes
        lines[cell.key] = summarise_run(cell, root, umap=umap)
        write_results(list(lines.values()), results)
    print(f"sslkit.sweep: {len(cells)} runs in {root}; results {results} and {results.parent / 'table.md'} "
          f"({_fmt(time.time() - t_start)})")


def rerun(line: dict, root: Path, device: str = "cpu") -> int:
    """Train a stored line again from its own config (``sslkit.train --config``) and print both results."""
    cell = Cell(line["method"], line["dataset"], line["budget"], line["seed"], variant=line.get("variant", ""))
    out = cell.run_dir(root)
    if cell.method == RANDOM:
        _random_run(cell, root, device)
    else:
        out.mkdir(parents=True, exist_ok=True)
        source = out.parent / f"{out.name}.source-config.json"
        source.write_text(json.dumps(line["config"], indent=2))
        cmd = [sys.executable, "-m", "sslkit.train", f"--config={source}", f"--output_dir={out}", f"--device={device}"]
        print(" ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            return 1
    res = json.loads((out / "results.json").read_text())
    print(f"stored: kNN {line['knn_acc']:.2f}%, linear {line['linear_acc']:.2f}%; "
          f"rerun: kNN {res['knn_acc']:.2f}%, linear {res['linear_acc']:.2f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sslkit.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the grid (skips finished runs, resumes killed ones)")
    r.add_argument("--methods", nargs="+", default=[RANDOM, "supervised", "sela", "deepcluster", "swav", "npid"])
    r.add_argument("--datasets", nargs="+", default=["cifar10"])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--budget", default="lab", help=f"one of {sorted(BUDGETS)}: " +
                   ", ".join(f"{k}: the {v[0]} preset for {v[1]} epochs" for k, v in BUDGETS.items()))
    r.add_argument("--device", default="cpu")
    r.add_argument("--root", type=Path, default=Path("runs/sweep"))
    r.add_argument("--results", type=Path, default=RESULTS)
    r.add_argument("--variant", default="", help="a name for what the options after -- change (e.g. hard_codes): "
                   "the runs get their own directories and their own rows in the table, beside the plain method's")
    r.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    r.add_argument("extra", nargs="*", help="further --key=value options for every run (after --)")
    u = sub.add_parser("summarise", help="rewrite the lines of --results from their run directories (no training)")
    u.add_argument("--root", type=Path, default=Path("runs/sweep"))
    u.add_argument("--results", type=Path, default=RESULTS)
    u.add_argument("--all", action="store_true", help="every line (default: lines written by an older summary)")
    t = sub.add_parser("table", help="print the results table (Markdown) from --results")
    t.add_argument("--results", type=Path, default=RESULTS)
    m = sub.add_parser("readme", help="rewrite README.md's results table from --results")
    m.add_argument("--results", type=Path, default=RESULTS)
    m.add_argument("--readme", type=Path, default=Path("README.md"))
    q = sub.add_parser("rerun", help="train line N (1-based) of --results again from its stored config, and "
                       "compare with the stored numbers")
    q.add_argument("line", type=int)
    q.add_argument("--results", type=Path, default=RESULTS)
    q.add_argument("--root", type=Path, default=Path("runs/rerun"))
    q.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.cmd == "summarise":
        lines = read_results(args.results)
        fresh = []
        for line in lines:
            cell = Cell(line["method"], line["dataset"], line["budget"], line["seed"],
                        line.get("variant_options", []), line.get("variant", ""))
            if "train_s" in line and not args.all:
                fresh.append(line)
                continue
            fresh.append(summarise_run(cell, args.root, umap="umap" in line))
            print(f"{cell.method} {cell.dataset} {cell.budget} seed {cell.seed}: summarised", flush=True)
        write_results(fresh, args.results)
        return 0
    if args.cmd == "table":
        print(table_markdown(results_table(read_results(args.results))))
    elif args.cmd == "readme":
        print("README.md " + ("updated" if update_readme(args.readme, args.results) else "already up to date"))
    elif args.cmd == "rerun":
        return rerun(read_results(args.results)[args.line - 1], args.root, args.device)
    else:
        cells = plan(args.methods, args.datasets, args.seeds, args.budget, args.extra, args.variant)
        if args.dry_run:
            for c in cells:
                print("python -m sslkit.train " + " ".join(c.train_args(args.root)) if c.method != RANDOM
                      else f"(random) {c.dataset} seed {c.seed}")
            return 0
        sweep(cells, args.root, args.results, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
