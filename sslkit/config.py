"""Run configuration: one dataclass, named presets, typed ``--key=value`` overrides.

``TrainConfig`` holds what every method shares (data, backbone, optimiser, schedule);
each method adds its own dataclass of hyper-parameters under ``cfg.params``, addressed
as ``--params.KEY=VALUE`` (or just ``--KEY=VALUE`` when no shared field has that name).
Presets are data each method class holds (``Method.presets``, added with
``Method.add_preset``), each naming the source of its recipe. This module imports no method:
the methods register in ``METHOD_REGISTRY`` when ``sslkit.methods`` is imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A bad preset or override; the message says which key and what is allowed."""


def opt(default, help: str):
    """A config field with its meaning, which ``--help`` prints beside its type and default."""
    return field(default=default, metadata={"help": help})


def field_help(obj_or_cls, name: str) -> str:
    """The declared meaning of a config field ('' when it has none)."""
    for f in dataclasses.fields(obj_or_cls):
        if f.name == name:
            return f.metadata.get("help", "")
    return ""


# The methods register here (sslkit.methods fills it on import), so this module never imports them.
METHOD_REGISTRY: dict = {}

Optimizer = typing.Literal["sgd", "adamw", "lars"]
Schedule = typing.Literal["cosine", "constant", "step"]
Precision = typing.Literal["fp32", "bf16", "fp16", "auto"]


@dataclass
class TrainConfig:
    method: str = opt("supervised", 'supervised | sela | deepcluster | swav | npid')
    dataset: str = opt("cifar10", 'cifar10 | cifar100 | svhn | an image folder (train/<class>/*, test/<class>/*) or its .tar(.gz)')
    subset: str = opt("lab", 'lab | mini | full | an int (images per class)')
    backbone: str = opt("convnet", 'convnet | resnet18 | alexnet')
    epochs: int = opt(10, 'passes over the training set')
    batch_size: int = opt(256, 'per process; the global batch is batch_size x processes under torchrun')
    optimizer: Optimizer = opt("sgd", 'sgd | adamw | lars (layer-wise trust ratios, sslkit/optim.py)')
    lr: float = opt(0.05, 'learning rate at a global batch of lr_batch_size; the run uses lr x global batch / '
                          'lr_batch_size')
    lr_batch_size: int = opt(256, 'the global batch size at which lr is stated (a recipe\'s own batch size)')
    momentum: float = opt(0.9, 'SGD / LARS momentum')
    weight_decay: float = opt(5e-4, 'L2 penalty (LARS: not on biases and norm layers)')
    lars_eta: float = opt(0.02, 'LARS trust coefficient (optimizer=lars)')
    lars_clip: bool = opt(True, 'LARS: never a larger step than plain SGD at lr (optimizer=lars)')
    warmup_epochs: int = opt(0, 'linear learning-rate warm-up from 0')
    schedule: Schedule = opt("cosine", 'cosine | constant | step (x lr_gamma at each of lr_milestones)')
    lr_milestones: tuple[int, ...] = opt((), 'schedule=step: epochs at which the rate is multiplied by lr_gamma '
                                              '(empty: at 1/3 and 2/3 of the run)')
    lr_gamma: float = opt(0.1, 'schedule=step: factor applied at each milestone')
    seed: int = opt(0, 'weights, augmentations and sampling order')
    device: str = opt("auto", 'auto | cpu | cuda | cuda:N | mps')
    precision: Precision = opt("fp32", 'fp32 | bf16 | fp16 | auto. CUDA: autocast of the training step. CPU: bf16 '
                                       'runs the backbone in bf16 while training (heads, codes, Sinkhorn, k-means, '
                                       'losses and evaluation stay fp32); fp16 needs CUDA. auto (the lab presets): '
                                       'bf16 where the device does bf16 in hardware (a CUDA GPU with bf16, a CPU '
                                       'with AVX512-BF16 or AMX), else fp32; the run records which')
    knn_every: int = opt(1, 'epochs between kNN monitors (0: off)')
    knn_k: int = opt(200, 'neighbours of the weighted kNN monitor')
    knn_temperature: float = opt(0.1, 'kNN vote weight exp(similarity / T)')
    output_dir: str = opt("", 'empty: do not write a run directory')
    compile: bool = opt(False, 'torch.compile the training step (GPU runs; first steps are slow)')
    tensorboard: bool = opt(False, 'also write the metrics as TensorBoard scalars (needs `pip install tensorboard`)')
    params: typing.Any = None  # the method's own dataclass

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, method=None) -> "TrainConfig":
        """Refuse, with a ``ConfigError`` that says what to change, any config that cannot run:
        values outside a field's choices, numbers out of range, an unknown method / backbone /
        dataset / device, parameters of another method, and the method's own checks
        (``Method.check_config``). The command line and ``sk.fit`` both call it before any work.
        ``method``: the method class actually trained (must be the one ``self.method`` names)."""
        cls = METHOD_REGISTRY.get(self.method)
        if cls is None:
            raise ConfigError(f"unknown method {self.method!r}; one of {sorted(METHOD_REGISTRY)}")
        if method is not None and method is not cls and not issubclass(method, cls):
            raise ConfigError(f"the config names method {self.method!r} but a {method.__name__} is being trained")
        if self.params is None:
            self.params = cls.Params()
        if not isinstance(self.params, cls.Params):
            raise ConfigError(f"params is a {type(self.params).__name__}, not the {cls.Params.__name__} of method "
                              f"{self.method!r}: use sk.METHODS[{self.method!r}].Params(...)")
        for obj, prefix in ((self, ""), (self.params, "params.")):
            for name, tp in _fields(obj).items():
                _check_type(f"{prefix}{name}", getattr(obj, name), tp)
        _check_numbers(self)
        _check_names(self)
        cls.check_config(self)
        return self


    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_type(key: str, value, tp) -> None:
    """A field's value against its declared type: a Literal's choices, int/float/bool/str."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"--{key}={value}: choose one of {', '.join(map(str, typing.get_args(tp)))}")
    elif tp is bool and not isinstance(value, bool):
        raise ConfigError(f"--{key}={value!r}: expected true or false")
    elif tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"--{key}={value!r}: expected an integer")
    elif tp is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"--{key}={value!r}: expected a number")


def _check_numbers(cfg: "TrainConfig") -> None:
    import math

    def need(ok: bool, key: str, what: str):
        if not ok:
            raise ConfigError(f"--{key}={getattr(cfg, key)!r}: {what}")

    for key in ("lr", "weight_decay", "momentum", "knn_temperature", "lars_eta", "lr_gamma"):
        need(math.isfinite(getattr(cfg, key)), key, "must be a finite number")
    need(cfg.lr >= 0, "lr", "must be >= 0")
    need(cfg.weight_decay >= 0, "weight_decay", "must be >= 0")
    need(0 <= cfg.momentum < 1, "momentum", "must be in [0, 1)")
    need(cfg.lars_eta > 0, "lars_eta", "must be > 0")
    need(0 < cfg.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
    for key in ("epochs", "batch_size", "lr_batch_size", "knn_k"):
        need(getattr(cfg, key) >= 1, key, "must be at least 1")
    need(cfg.knn_temperature > 0, "knn_temperature", "must be > 0")
    need(cfg.knn_every >= 0, "knn_every", "must be >= 0 (0: no kNN monitor)")
    need(0 <= cfg.warmup_epochs <= cfg.epochs, "warmup_epochs", f"must be between 0 and --epochs={cfg.epochs}")
    need(all(isinstance(m, int) and 0 < m < cfg.epochs for m in cfg.lr_milestones)
         and list(cfg.lr_milestones) == sorted(set(cfg.lr_milestones)), "lr_milestones",
         f"must be increasing epochs between 1 and --epochs-1 ({cfg.epochs - 1})")


def _check_names(cfg: "TrainConfig") -> None:
    """Backbone, dataset, subset, device, optional packages: known and usable here."""
    import re
    from pathlib import Path

    import torch

    import labdata

    from .backbones import BACKBONES

    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"--backbone={cfg.backbone}: unknown; one of {sorted(BACKBONES)}")
    subset = str(cfg.subset)
    if subset not in ("", "full", "none", "None", "lab", "mini") and not (subset.isdigit() and int(subset) > 0):
        raise ConfigError(f"--subset={cfg.subset}: use lab, mini, full, or a positive number of images per class")
    if cfg.dataset not in labdata.datasets():
        if not Path(cfg.dataset).expanduser().exists():
            raise ConfigError(f"unknown dataset {cfg.dataset!r}: use one of {labdata.datasets()}, or the path of an "
                              "image folder (train/<class>/*, test/<class>/*) or of a .tar/.tar.gz of one")
        if subset in ("lab", "mini"):
            raise ConfigError(f"--subset={cfg.subset} is defined for {labdata.datasets()} only; with an image folder "
                              "use --subset=full or --subset=N (N images per class)")
    dev = cfg.device
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", dev):
        raise ConfigError(f"--device={dev}: unknown device; use auto, cpu, cuda, cuda:N or mps")
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device={dev}: no CUDA GPU is visible on this machine; use --device=cpu "
                              "(or auto, which picks a GPU when there is one)")
        index = int(dev.split(":")[1]) if ":" in dev else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device={dev}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device=mps: Apple's MPS backend is not available here; use --device=cpu")
    gpu = dev.startswith("cuda") or (dev == "auto" and torch.cuda.is_available())
    if cfg.precision == "fp16" and not gpu:
        raise ConfigError("--precision=fp16 needs a CUDA GPU (its loss scaling is CUDA's); use fp32 or bf16")
    if cfg.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("--tensorboard=true needs the tensorboard package: pip install tensorboard") from None


def _convert(value: str, tp, key: str):
    """Parse the string ``value`` into type ``tp`` (int, float, bool, str, tuples, Optional)."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        _check_type(key, value, tp)
        return value
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
    if cfg.params is None and cfg.method in METHOD_REGISTRY:
        cfg.params = METHOD_REGISTRY[cfg.method].Params()
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


def presets_for(method: str) -> list[Preset]:
    """The presets of a method (each method class holds its own: ``Method.presets``)."""
    cls = METHOD_REGISTRY.get(method)
    return sorted(cls.presets.values(), key=lambda p: p.name) if cls is not None else []


def apply_preset(cfg: TrainConfig, name: str) -> TrainConfig:
    cls = METHOD_REGISTRY.get(cfg.method)
    preset = cls.presets.get(name) if cls is not None else None
    if preset is None:
        others = [m for m, c in METHOD_REGISTRY.items() if name in c.presets]
        where = f" (it exists for {', '.join(sorted(others))})" if others else ""
        names = ", ".join(p.name for p in presets_for(cfg.method)) or "none"
        raise ConfigError(f"no preset {name!r} for method {cfg.method!r}{where}; its presets: {names}")
    for key, value in preset.values.items():
        set_value(cfg, key, value)
    return cfg
