"""python -m sslkit.eval --checkpoint=RUN_DIR/checkpoints/last.pt [--key=value ...]

Evaluates a checkpoint written by ``python -m sslkit.train``: weighted kNN, the linear
probe on frozen features, and NMI / ARI / Hungarian accuracy of each clustering head on
the test images. The data set, subset and kNN settings come from the checkpoint's config
unless overridden. Writes JSON (default: ``eval.json`` beside the run's ``config.json``).

Options:
    --checkpoint=PATH   a .pt file, or a run directory (its checkpoints/last.pt)
    --dataset=NAME      evaluate on another data set (e.g. a model trained on cifar10 on cifar100)
    --subset=NAME       lab | mini | full | images per class
    --device=NAME       auto | cpu | cuda | ...
    --linear=false      skip the linear probe
    --output=PATH       where to write the JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPTIONS = ("checkpoint", "dataset", "subset", "device", "linear", "output")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from ..config import ConfigError, config_from_dict, parse_overrides, set_value

    try:
        opts = parse_overrides(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        print(f"error: unknown option --{unknown[0]}; options: {', '.join('--' + o for o in OPTIONS)}", file=sys.stderr)
        return 2
    if "checkpoint" not in opts:
        print("error: --checkpoint=PATH is required (a .pt file or a run directory)", file=sys.stderr)
        return 2
    path = Path(opts["checkpoint"])
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        print(f"error: no checkpoint at {path}", file=sys.stderr)
        return 2

    import torch

    import labdata

    from .. import engine
    from ..train import load_data
    from .report import evaluate_method

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = state["config"]
    except Exception as exc:  # a truncated or foreign file
        print(f"error: {path} is not an sslkit checkpoint ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    cfg = config_from_dict(saved)
    for key in ("dataset", "subset", "device"):
        if key in opts:
            set_value(cfg, key, opts[key])
    try:
        train, test = load_data(cfg)
    except labdata.LabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = engine.resolve_device(cfg)
    from ..runs import method_from_checkpoint

    method = method_from_checkpoint(state, cfg, default_samples=len(train)).to(device)
    results = evaluate_method(method, train.images, train.labels, test.images, test.labels, knn_k=cfg.knn_k,
                              knn_temperature=cfg.knn_temperature,
                              linear=opts.get("linear", "true").lower() not in ("0", "false", "no"))
    results.update({"checkpoint": str(path), "epoch": state.get("epoch"), "dataset": cfg.dataset,
                    "subset": cfg.subset, "device": str(device)})
    out = Path(opts.get("output") or path.parent.parent / "eval.json")
    out.write_text(json.dumps(results, indent=2))
    line = f"kNN {results['knn_acc']:.2f}%"
    if "linear_acc" in results:
        line += f", linear probe {results['linear_acc']:.2f}%"
    if "best_head_nmi" in results:
        line += f", best head NMI {results['best_head_nmi']:.3f}"
    print(f"{path}: {line} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
