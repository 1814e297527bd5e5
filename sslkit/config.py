"""Run configuration: one dataclass, named presets, typed ``--key=value`` overrides.

``TrainConfig`` holds what every method shares (data, backbone, optimiser, schedule);
each method adds its own dataclass of hyper-parameters under ``cfg.params``, addressed
as ``--params.KEY=VALUE`` (or just ``--KEY=VALUE`` when no shared field has that name).
Presets are data each method class holds (``Method.presets``, added with
``Method.add_preset``), each naming the source of its recipe. This module imports no method:
the methods register in ``sslkit.registry`` when ``sslkit.methods`` is imported, and every
check of a config is ``sslkit.validation.validate``.
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


Optimizer = typing.Literal["sgd", "adamw", "lars"]
Schedule = typing.Literal["cosine", "constant", "step"]
Precision = typing.Literal["fp32", "bf16", "fp16", "auto"]


@dataclass
class TrainConfig:
    method: str = opt("", 'a registered method (`python -m sslkit.train --help` lists them, with their presets)')
    dataset: str = opt("cifar10", 'cifar10 | cifar100 | svhn | stl10 | imagenet | a folder or .tar(.gz) of images: '
                                  'labelled (train/<class>/*, test/ or val/<class>/*) or not (images at any depth)')
    subset: str = opt("lab", 'lab | mini | full | an int (images per class; images in all for images without labels)')
    image_size: int = opt(32, 'side in pixels the images are read and trained at (shorter side resized, centre '
                              'square): 32 for the CIFAR-sized lab, 64, 96, 128, 224; backbones take the ImageNet '
                              'stem from 96 px')
    eval_dataset: str = opt("", 'labelled images for the kNN monitor, linear probe and NMI against classes: a '
                                'registered data set or a folder with train/<class>/ and test/ or val/<class>/ '
                                '(empty: the training data\'s own labelled splits; none for images without labels)')
    eval_subset: str = opt("", 'subset of the evaluation images: lab | mini | full | an int (empty: --subset for the '
                               'training data\'s own splits, full for --eval_dataset)')
    stream: bool = opt(False, 'decode the images in DataLoader worker processes at every pass instead of holding '
                              'them in memory (automatic above --stream_above_gb)')
    stream_above_gb: float = opt(4.0, 'stream when the decoded training images would take more than this many GB')
    workers: int = opt(-1, 'processes that decode images (-1: one per CPU core of this process, at most 16; 0: the '
                           'training process itself)')
    strict_images: bool = opt(False, 'stop at a file that is not an image or does not decode, instead of skipping '
                                     'it (the skipped files are counted and the first ones named)')
    backbone: str = opt("convnet", 'convnet | resnet18 | resnet50 | alexnet | alexnet_big')
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
    final_lr_ratio: float = opt(0.0, 'schedule=cosine: the rate the cosine ends at, as a fraction of the peak rate '
                                     '(SwAV: 0.001)')
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

    def __post_init__(self):
        """The method's own parameters at their defaults, when the method is known and none are given."""
        if self.params is None and self.method:
            from .registry import METHODS, load_plugins

            load_plugins()
            if self.method in METHODS:
                self.params = METHODS[self.method].Params()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, method=None, data=None) -> "TrainConfig":
        """``sslkit.validation.validate(self, data, method)``: every check, before any work."""
        from .validation import validate

        return validate(self, data, method)

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
    """A ``TrainConfig`` from a run's ``config.json`` / checkpoint dict (lists back to tuples).
    Raises ``ConfigError`` for anything that is not a run's config."""
    from .registry import get_method

    if not isinstance(saved, dict) or not isinstance(saved.get("method"), str):
        raise ConfigError("this is not an sslkit run's config (a JSON object with a 'method'): use the config.json "
                          "of a run directory, or a line's config in chapters/results/runs.jsonl")
    get_method(saved["method"])
    cfg = TrainConfig(method=saved["method"])
    for key, value in saved.items():
        if key == "params":
            for k, v in (value or {}).items():
                set_value(cfg, f"params.{k}", tuple(v) if isinstance(v, list) else v)
        elif key != "method":
            set_value(cfg, key, tuple(value) if isinstance(value, list) else value)
    return cfg


def parse_overrides(args: list[str]) -> dict:
    """``["--lr=0.1", "--params.epsilon", "0.05"]`` -> ``{"lr": "0.1", "params.epsilon": "0.05"}``
    (``--key=value`` or ``--key value``; dashes in a key read as underscores)."""
    out, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"cannot read {arg!r}: options are written --key=value or --key value")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = arg[2:], args[i + 1]
            i += 1
        else:
            key, value = arg[2:], "true"  # a flag alone
        out[key.replace("-", "_")] = value
        i += 1
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
    from .registry import METHODS, load_plugins

    load_plugins()
    cls = METHODS.get(method)
    return sorted(cls.presets.values(), key=lambda p: p.name) if cls is not None else []


def apply_preset(cfg: TrainConfig, name: str) -> TrainConfig:
    from .registry import METHODS, load_plugins

    load_plugins()
    cls = METHODS.get(cfg.method)
    preset = cls.presets.get(name) if cls is not None else None
    if preset is None:
        others = [m for m, c in METHODS.items() if name in c.presets]
        where = f" (it exists for {', '.join(sorted(others))})" if others else ""
        names = ", ".join(p.name for p in presets_for(cfg.method)) or "none"
        raise ConfigError(f"no preset {name!r} for method {cfg.method!r}{where}; its presets: {names}")
    for key, value in preset.values.items():
        set_value(cfg, key, value)
    return cfg
