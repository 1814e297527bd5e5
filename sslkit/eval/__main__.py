"""python -m sslkit.eval --checkpoint RUN_DIR [--dataset NAME] [--subset S] [--device D] [--output FILE]

Evaluates a checkpoint written by ``python -m sslkit.train``: weighted kNN, the linear
probe on frozen features, k-means with K = classes on the features, and NMI / ARI /
majority-vote accuracy of each clustering head on the test images. The data set, subset and
kNN settings come from the checkpoint's config unless overridden. Writes JSON (default:
``eval.json`` in the run directory). Every option is checked before anything is loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sslkit.eval", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt file, or a run directory (its checkpoints/last.pt)")
    p.add_argument("--dataset", help="evaluate on another data set (e.g. a model trained on cifar10 on cifar100; a "
                                     "folder with train/<class>/ and test/ or val/<class>/)")
    p.add_argument("--subset", help="lab | mini | full | images per class")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--linear", default="true", choices=["true", "false"], help="run the linear probe")
    p.add_argument("--output", help="where to write the JSON (default: eval.json in the run directory)")
    return p


def _checks(args):
    """The checkpoint's config with the overrides, the checkpoint path and the output path, all
    checked (device, data set name, output folder writable) before any evaluation."""
    import torch

    from ..config import ConfigError, config_from_dict, set_value
    from ..run_plan import check_output_dir
    from ..validation import validate

    path = Path(args.checkpoint).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}: give a run directory of sslkit.train or its .pt file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = state["config"]
    except Exception as exc:  # a truncated or foreign file
        raise ConfigError(f"{path} is not an sslkit checkpoint ({type(exc).__name__}: {exc})") from None
    cfg = config_from_dict(saved)
    for key in ("dataset", "subset", "device"):
        if getattr(args, key) is not None:
            set_value(cfg, key, getattr(args, key))
    validate(cfg)  # the device, the data set's name, ... as a run checks them
    out = Path(args.output).expanduser() if args.output else path.parent.parent / "eval.json"
    if out.is_dir():
        raise ConfigError(f"--output={out} is a directory; name a file")
    check_output_dir(out.parent)
    return state, cfg, path, out


def main(argv: list[str] | None = None) -> int:
    import labdata

    from ..config import ConfigError
    from ..runs import RunDirError

    args = _parser().parse_args(argv)
    try:
        state, cfg, path, out = _checks(args)
        from ..data import load_run_data
        from ..engine import resolve_device
        from ..runs import method_from_checkpoint
        from .report import evaluate_method

        data = load_run_data(cfg, log=None)
        if data.eval is None:
            raise ConfigError(f"{cfg.dataset} has no labels to evaluate against: give --dataset a labelled set "
                              "(a registered data set or a folder with train/<class>/ and test/<class>/)")
        device = resolve_device(cfg)
        method = method_from_checkpoint(state, cfg, default_samples=len(data.train)).to(device)
    except (ConfigError, RunDirError, labdata.LabDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = evaluate_method(method, *data.eval, knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature,
                              linear=args.linear == "true")
    results.update({"checkpoint": str(path), "epoch": state.get("epoch"), "dataset": cfg.dataset,
                    "subset": cfg.subset, "device": str(device)})
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
