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

A **budget** says how long each method trains: ``lab`` is every method's ``lab`` preset as it is
(the chapters' runs; each preset's epochs fit the same time on the book's 2-core CPU), ``long``
the same presets for 100 epochs. ``random`` is the untrained backbone of the lab runs (no
training: the floor) and ``pixels`` the standardised pixels, evaluated the same way.

A **variant** is a named change of the presets for an ablation, e.g.
``--variant hard_codes -- --params.hard_codes=true``: its runs get their own directories
(``<method>-<variant>-seed<S>``) and their own rows in the table, beside the plain method's;
the stored line keeps the variant's name and options.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .results import (BASELINES, README_BEGIN, README_END, RANDOM, RESULTS, read_results, readme_table,  # noqa: F401
                      results_table,
                      table_markdown, update_readme, write_results)

from .summary import summarise_run  # noqa: E402

__all__ = ["BUDGETS", "Cell", "plan", "sweep", "rerun", "run_cell", "summarise_run", "read_results", "write_results",
           "results_table", "table_markdown", "readme_table", "update_readme", "main"]

BUDGETS = {  # name -> (preset, epochs): lab, each method's lab preset as it is (its epochs fit the same time);
    "lab": ("lab", None),  # long, the same presets for 100 epochs
    "long": ("lab", 100),
}



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
        return [f"--method={self.method}", f"--preset={preset}", *([f"--epochs={epochs}"] if epochs else []),
                f"--seed={self.seed}", f"--dataset={self.dataset}", f"--output_dir={self.run_dir(root)}", *self.extra]


def line_key(line: dict) -> tuple:
    """A stored line's cell: (method, dataset, budget, seed, variant)."""
    return line["method"], line["dataset"], line["budget"], line["seed"], line.get("variant", "")


def plan(methods, datasets, seeds, budget: str, extra=(), variant: str = "") -> list[Cell]:
    """Every (method, dataset, seed) of the grid; checked before any run starts."""
    import re

    from .config import ConfigError
    from .registry import method_names

    if variant and not re.fullmatch(r"[a-z0-9_]+", variant):
        raise ConfigError(f"--variant={variant!r}: use lower-case letters, digits and _ only")
    if variant and not extra:
        raise ConfigError(f"--variant={variant} names a change, but no options follow: give them "
                          f"after --, e.g. --variant={variant} -- --params.hard_codes=true")
    if budget not in BUDGETS:
        raise ConfigError(f"unknown --budget={budget}; choose one of {sorted(BUDGETS)}")
    for m in methods:
        if m not in BASELINES and m not in method_names():
            raise ConfigError(f"unknown method {m!r}; choose among {[*BASELINES, *method_names()]}")
    return [Cell(m, d, budget, int(s), list(extra), variant) for d in datasets for s in seeds for m in methods]


class PixelFeatures(torch.nn.Module):
    """The ``pixels`` baseline's features: the image's standardised pixels as one vector."""

    def __init__(self, dataset: str):
        super().__init__()
        from .backbones import DATASET_STATS, Normalize

        self.norm = Normalize(*DATASET_STATS.get(dataset, DATASET_STATS["cifar10"]))

    def forward(self, x):
        return self.norm(x).flatten(1)


def _baseline_run(cell: Cell, root: Path, device: str) -> None:
    """A baseline evaluated like a trained run: ``random``, the untrained backbone of the lab runs;
    ``pixels``, the standardised pixels. Its config: the ``TrainConfig`` fields for the data, the
    backbone and the evaluation, and ``epochs`` 0."""
    from .backbones import build_backbone
    from .config import TrainConfig, parse_overrides, set_value
    from .data import load_data
    from .device import seed_everything
    from .eval import evaluate_features
    from .runs import RunDir

    cfg = TrainConfig(method="", dataset=cell.dataset, seed=cell.seed, device=device)
    for key, value in parse_overrides(cell.extra).items():  # the grid's options that concern data and evaluation
        if key in ("subset", "knn_k", "knn_temperature", "backbone"):
            set_value(cfg, key, value)
    train, test = load_data(cfg)
    seed_everything(cfg.seed)
    net = build_backbone(cfg.backbone, dataset=cfg.dataset) if cell.method == RANDOM else PixelFeatures(cfg.dataset)
    results = evaluate_features(net.to(torch.device(device)), train.images, train.labels, test.images, test.labels,
                                knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature)
    run = RunDir(cell.run_dir(root))  # the record a trained run writes: config, git SHA, results
    run.lock()
    run.write_config({"method": cell.method, "epochs": 0, "precision": "fp32",
                      **{k: getattr(cfg, k) for k in ("dataset", "subset", "backbone", "seed", "knn_k",
                                                       "knn_temperature", "device")}})
    run.write_results(dict(results, device=device))
    run.unlock()


def run_cell(cell: Cell, root: Path, device: str = "cpu", inprocess: bool = False) -> float:
    """Train (or resume) one cell through ``sslkit.train`` -- in a child process, or with ``inprocess`` in
    this one (``sslkit.train.main``, the same code); seconds spent. Raises on failure."""
    t0 = time.time()
    if cell.method in BASELINES:
        _baseline_run(cell, root, device)
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


def _fmt(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _stale_runs(cells: list[Cell], root: Path, device: str) -> list[str]:
    """Run directories of the grid that hold another config than the cell trains now (a preset
    or a budget changed since): they would be skipped or resumed as they are."""
    from .cli import parse_train_args
    from .data import describe
    from .run_plan import config_diff, with_defaults
    from .validation import validate

    out = []
    for cell in cells:
        saved = cell.run_dir(root) / "config.json"
        if cell.method in BASELINES or not saved.exists():
            continue
        want = parse_train_args([*cell.train_args(root), f"--device={device}"]).cfg
        info = describe(want)  # what follows from the data set (the supervised head's classes)
        validate(want, info if info.labelled else None)
        diffs = config_diff(with_defaults(json.loads(saved.read_text())),
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
        from .config import ConfigError

        raise ConfigError("these run directories hold another config than the grid trains now "
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
        umap = cell.seed == umap_seed and cell.method not in BASELINES and cell.dataset in ("cifar10", "svhn")
        lines[cell.key] = summarise_run(cell, root, umap=umap)
        write_results(list(lines.values()), results)
    print(f"sslkit.sweep: {len(cells)} runs in {root}; results {results} and {results.parent / 'table.md'} "
          f"({_fmt(time.time() - t_start)})")


def rerun(line: dict, root: Path, device: str = "cpu") -> int:
    """Train a stored line again from its own config (``sslkit.train --config``) and print both results."""
    cell = Cell(line["method"], line["dataset"], line["budget"], line["seed"], variant=line.get("variant", ""))
    out = cell.run_dir(root)
    if cell.method in BASELINES:
        _baseline_run(cell, root, device)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
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


def _stored_lines(path: Path) -> list[dict]:
    """The lines of a results file, refusing a file that is missing or holds none (a typo in
    ``--results`` must not empty the README's table)."""
    from .config import ConfigError

    lines = read_results(path)
    if not lines:
        raise ConfigError(f"--results={path}: {'no such file' if not Path(path).exists() else 'no runs in it'}; "
                          f"name a runs.jsonl that `sweep run` wrote (default {RESULTS})")
    return lines


def _summarise(args) -> int:
    fresh = []
    for line in _stored_lines(args.results):
        cell = Cell(line["method"], line["dataset"], line["budget"], line["seed"],
                    line.get("variant_options", []), line.get("variant", ""))
        if "train_s" in line and not args.all:
            fresh.append(line)
            continue
        fresh.append(summarise_run(cell, args.root, umap="umap" in line))
        print(f"{cell.method} {cell.dataset} {cell.budget} seed {cell.seed}: summarised", flush=True)
    write_results(fresh, args.results)
    return 0


def _rerun(args) -> int:
    from .config import ConfigError

    lines = _stored_lines(args.results)
    if not 1 <= args.line <= len(lines):
        raise ConfigError(f"line {args.line}: {args.results} has lines 1 to {len(lines)}")
    return rerun(lines[args.line - 1], args.root, args.device)


def _run(args) -> int:
    from .registry import method_names

    cells = plan(args.methods or [*BASELINES, *method_names()], args.datasets, args.seeds, args.budget, args.extra,
                 args.variant)
    if args.dry_run:
        for c in cells:
            print("python -m sslkit.train " + " ".join(c.train_args(args.root)) if c.method not in BASELINES
                  else f"({c.method}) {c.dataset} seed {c.seed}")
        return 0
    sweep(cells, args.root, args.results, args.device)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sslkit.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the grid (skips finished runs, resumes killed ones)")
    r.add_argument("--methods", nargs="+", default=None,
                   help=f"methods and baselines (default: all: {' '.join(BASELINES)} and every registered method)")
    r.add_argument("--datasets", nargs="+", default=["cifar10"])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--budget", default="lab", help=f"one of {sorted(BUDGETS)}: " +
                   ", ".join(f"{k}: the {v[0]} preset" + (f" for {v[1]} epochs" if v[1] else " as it is")
                             for k, v in BUDGETS.items()))
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
    return p


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError

    args = _parser().parse_args(argv)
    try:
        if args.cmd == "table":
            print(table_markdown(results_table(_stored_lines(args.results))))
        elif args.cmd == "readme":
            _stored_lines(args.results)
            print(f"{args.readme} " + ("updated" if update_readme(args.readme, args.results) else "already up to date"))
        else:
            return {"summarise": _summarise, "rerun": _rerun, "run": _run}[args.cmd](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
