"""python -m sslkit.train --method=NAME [--preset=NAME] [--key=value ...]

Runs a method at any scale with the same code the chapters use: the data set as a uint8
tensor on the device, batched augmentation, the generic training loop, the kNN monitor.
The run directory (``--output_dir``, default ``runs/<method>-<dataset>-<preset>``)
receives ``config.json``, ``git_sha.txt``, ``metrics.jsonl``, ``checkpoints/last.pt`` and,
at the end, ``results.json`` (kNN and linear-probe accuracy of the final features).

Examples:
    python -m sslkit.train --method=sela --preset=lab
    python -m sslkit.train --method=sela --preset=cifar10 --device=cuda --precision=bf16
    python -m sslkit.train --method=sela --help        # every option, its default, the presets
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .config import ConfigError, TrainConfig, _fields, apply_preset, parse_overrides, presets_for, set_value


def _option_lines(obj, skip=()) -> list[str]:
    """One line per dataclass field: --name, type, default (types from config._fields)."""
    return [f"  --{name:18s} {getattr(tp, '__name__', str(tp)):6s} default {getattr(obj, name)!r}"
            for name, tp in _fields(obj).items() if name not in skip]


def _describe(cfg: TrainConfig) -> str:
    lines = ["options (--key=value):", *_option_lines(cfg, skip=("params",))]
    if cfg.params is not None:
        lines.append(f"method parameters of {cfg.method!r} (--params.KEY=value or --KEY=value):")
        lines += _option_lines(cfg.params)
    presets = presets_for(cfg.method)
    if presets:
        lines.append(f"presets of {cfg.method!r} (--preset=NAME):")
        for p in presets:
            lines.append(f"  {p.name:10s} {p.description or ''}\n  {'':10s} source: {p.source}")
    return "\n".join(lines)


def build_config(argv: list[str]) -> tuple[TrainConfig, str, bool]:
    """Config from the command line: method, then preset, then overrides. Returns (cfg, preset, help)."""
    from .methods import METHODS

    args = [a for a in argv if a not in ("-h", "--help")]
    wants_help = len(args) != len(argv)
    opts = parse_overrides(args)
    method = opts.pop("method", None)
    if method is None:
        if wants_help:
            return TrainConfig(method=""), "", True
        raise ConfigError(f"--method is required; one of {sorted(METHODS)}")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; one of {sorted(METHODS)}")
    cfg = TrainConfig(method=method, params=METHODS[method].Params())
    preset = opts.pop("preset", "")
    if preset:
        apply_preset(cfg, preset)
    for key, value in opts.items():
        set_value(cfg, key, value)
    _validate(cfg)
    return cfg, preset, wants_help


def _validate(cfg: TrainConfig) -> None:
    import labdata

    from .backbones import BACKBONES

    if cfg.dataset not in labdata.datasets():
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; one of {labdata.datasets()}")
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {cfg.backbone!r}; one of {sorted(BACKBONES)}")
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be fp32, bf16 or fp16, not {cfg.precision!r}")
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"--{name} must be positive")


def _subset(value: str):
    if value in ("", "full", "none", "None"):
        return None
    return int(value) if value.isdigit() else value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, preset, wants_help = build_config(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if wants_help:
        print(__doc__)
        if cfg.method:
            print(_describe(cfg))
        return 0
    out = Path(cfg.output_dir or f"runs/{cfg.method}-{cfg.dataset}-{preset or 'default'}")
    cfg.output_dir = str(out)
    if (out / "config.json").exists():
        print(f"error: {out} already holds a run (config.json); choose another --output_dir "
              "(resuming a run is not supported yet)", file=sys.stderr)
        return 2

    import labdata

    from . import engine
    from .backbones import extract_features
    from .eval import knn_accuracy, linear_probe
    from .runs import RunDir

    try:
        train = labdata.load(cfg.dataset, "train", subset=_subset(cfg.subset))
        test = labdata.load(cfg.dataset, "test", subset=_subset(cfg.subset))
    except labdata.LabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.batch_size > len(train):
        print(f"error: --batch_size={cfg.batch_size} is larger than the {len(train)} training images",
              file=sys.stderr)
        return 2
    device = engine.resolve_device(cfg)
    print(f"sslkit.train: {cfg.method} on {cfg.dataset} ({len(train)} train / {len(test)} test images), "
          f"{cfg.backbone}, {cfg.epochs} epochs, device {device}, output {out}")
    method = engine.build_method(cfg, len(train))
    run = RunDir(out)
    eval_data = (train.images, train.labels, test.images, test.labels)
    engine.fit(method, train.images, cfg, device, labels=train.labels if method.uses_labels else None,
               eval_data=eval_data, run=run, true_labels=train.labels)
    ftr = extract_features(method.backbone, train.images)
    fte = extract_features(method.backbone, test.images)
    results = {"knn_acc": knn_accuracy(ftr, train.labels, fte, test.labels, k=cfg.knn_k,
                                       temperature=cfg.knn_temperature),
               "linear_acc": linear_probe(ftr, train.labels, fte, test.labels)["test_acc"],
               "train_images": len(train), "test_images": len(test), "device": str(device)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: kNN {results['knn_acc']:.2f}%, linear probe {results['linear_acc']:.2f}% -> {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
