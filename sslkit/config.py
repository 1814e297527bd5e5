"""Run configuration: one dataclass, named presets, typed ``--key=value`` overrides.

``TrainConfig`` holds what every method shares (data, backbone, optimiser, schedule);
each method adds its own dataclass of hyper-parameters under ``cfg.params``, addressed
as ``--params.KEY=VALUE`` (or just ``--KEY=VALUE`` when no shared field has that name).
Presets are dictionaries registered per method, each naming the source of its recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A bad preset or override; the message says which key and what is allowed."""


@dataclass
class TrainConfig:
    method: str = "supervised"  # supervised | sela | deepcluster | swav | npid
    dataset: str = "cifar10"  # cifar10 | cifar100 | svhn | an image folder (train/<class>/*, test/<class>/*) or its .tar(.gz)
    subset: str = "lab"  # lab | mini | full | an int (images per class)
    backbone: str = "convnet"  # convnet | resnet18 | alexnet
    epochs: int = 10  # passes over the training set
    batch_size: int = 256  # per process; the global batch is batch_size x processes under torchrun
    optimizer: str = "sgd"  # sgd | adamw | lars (layer-wise trust ratios, sslkit/optim.py)
    lr: float = 0.05  # for a global batch of 256; scaled linearly with the global batch / 256
    momentum: float = 0.9  # SGD / LARS momentum
    weight_decay: float = 5e-4  # L2 penalty (LARS: not on biases and norm layers)
    lars_eta: float = 0.02  # LARS trust coefficient (optimizer=lars)
    lars_clip: bool = True  # LARS: never a larger step than plain SGD at lr (optimizer=lars)
    warmup_epochs: int = 0  # linear learning-rate warm-up from 0
    schedule: str = "cosine"  # cosine | constant | step
    seed: int = 0  # weights, augmentations and sampling order
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on GPU)
    knn_every: int = 1  # epochs between kNN monitors (0: off)
    knn_k: int = 200  # neighbours of the weighted kNN monitor
    knn_temperature: float = 0.1  # kNN vote weight exp(similarity / T)
    output_dir: str = ""  # empty: do not write a run directory
    compile: bool = False  # torch.compile the training step (GPU runs; first steps are slow)
    tensorboard: bool = False  # also write the metrics as TensorBoard scalars (needs `pip install tensorboard`)
    params: typing.Any = None  # the method's own dataclass

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _convert(value: str, tp, key: str):
    """Parse the string ``value`` into type ``tp`` (int, float, bool, str, tuples, Optional)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _convert(value, args[0], key)
    if origin is tuple:
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else float
        parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
        return tuple(_convert(p.strip(), inner, key) for p in parts)
    try:
        if tp is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
    except ValueError:
        raise ConfigError(f"--{key}={value}: expected a value of type {tp.__name__}") from None
    return value


def _fields(obj) -> dict:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


def set_value(cfg: TrainConfig, key: str, value) -> None:
    """Set ``key`` (``name`` or ``params.name``) on ``cfg``, converting strings to the field's type."""
    target, name = cfg, key
    if cfg.params is None and cfg.method:
        from .methods import METHODS  # late: methods register their presets through this module

        if cfg.method in METHODS:
            cfg.params = METHODS[cfg.method].Params()
    if key.startswith("params."):
        target, name = cfg.params, key.split(".", 1)[1]
    elif key not in _fields(cfg) and cfg.params is not None and key in _fields(cfg.params):
        target = cfg.params
    if target is None or not dataclasses.is_dataclass(target):
        raise ConfigError(f"--{key}: method {cfg.method!r} has no parameters")
    fields = _fields(target)
    if name not in fields or name == "params":
        known = sorted(set(_fields(cfg)) - {"params"}) + (sorted(f"params.{k}" for k in _fields(cfg.params))
                                                         if cfg.params is not None else [])
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
        raise ConfigError(f"unknown option --{key} for method {cfg.method!r}.{hint} "
                          f"`python -m sslkit.train --method={cfg.method} --help` lists them all.")
    tp = fields[name]
    if isinstance(value, str) and tp is not str:
        value = _convert(value, tp, key)
    setattr(target, name, value)


def config_from_dict(saved: dict) -> TrainConfig:
    """A ``TrainConfig`` from a run's ``config.json`` / checkpoint dict (lists back to tuples)."""
    cfg = TrainConfig(method=saved["method"])
    for key, value in saved.items():
        if key == "params":
            for k, v in (value or {}).items():
                set_value(cfg, f"params.{k}", tuple(v) if isinstance(v, list) else v)
        elif key != "method":
            set_value(cfg, key, tuple(value) if isinstance(value, list) else value)
    return cfg


def parse_overrides(args: list[str]) -> dict:
    """``["--lr=0.1", "--params.epsilon=0.05"]`` -> ``{"lr": "0.1", "params.epsilon": "0.05"}``."""
    out = {}
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ConfigError(f"cannot read {arg!r}: options are written --key=value")
        key, value = arg[2:].split("=", 1)
        out[key.replace("-", "_")] = value
    return out


@dataclass
class Preset:
    method: str
    name: str
    values: dict
    source: str  # where the recipe comes from (paper, table, official code)
    description: str = ""


PRESETS: dict[tuple[str, str], Preset] = {}


def register_preset(method: str, name: str, source: str, description: str = "", **values) -> Preset:
    preset = Preset(method, name, values, source, description)
    PRESETS[(method, name)] = preset
    return preset


def presets_for(method: str) -> list[Preset]:
    return [p for (m, _), p in sorted(PRESETS.items()) if m == method]


def apply_preset(cfg: TrainConfig, name: str) -> TrainConfig:
    preset = PRESETS.get((cfg.method, name))
    if preset is None:
        others = [m for (m, n) in PRESETS if n == name]
        where = f" (it exists for {', '.join(sorted(others))})" if others else ""
        names = ", ".join(p.name for p in presets_for(cfg.method)) or "none"
        raise ConfigError(f"no preset {name!r} for method {cfg.method!r}{where}; its presets: {names}")
    for key, value in preset.values.items():
        set_value(cfg, key, value)
    return cfg
