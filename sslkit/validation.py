"""Every check of a run's config, in one place: ``validate(cfg, data=None)``.

``sk.fit``, ``python -m sslkit.train``, the sweep and ``python -m sslkit.eval`` all call it:
first without the data (before anything is loaded or written: types, ranges, names, the
device, the method's own settings), then with the data's ``DataInfo`` (before the run
directory is made: the batch against the number of images, the classes, what the method
needs of the data). Each problem raises ``ConfigError`` with what to change; the command
lines turn it into exit code 2.
"""

from __future__ import annotations

from .config import ConfigError, _check_type, _fields
from .registry import get_method


def validate(cfg, data=None, method=None):
    """Refuse, with a ``ConfigError`` that says what to change, any config that cannot run.

    data: the training data's ``sslkit.data.DataInfo`` when it is known; then the method's
        parameters that follow from the data are filled in (``Method.resolve_params``).
    method: the method class actually trained (it must be the one ``cfg.method`` names).
    Returns ``cfg``.
    """
    cls = get_method(cfg.method)
    if method is not None and method is not cls and not issubclass(method, cls):
        raise ConfigError(f"the config names method {cfg.method!r} but a {method.__name__} is being trained")
    if cfg.params is None:
        cfg.params = cls.Params()
    if not isinstance(cfg.params, cls.Params):
        raise ConfigError(f"params is a {type(cfg.params).__name__}, not the {cls.Params.__name__} of method "
                          f"{cfg.method!r}: use sk.METHODS[{cfg.method!r}].Params(...)")
    for obj, prefix in ((cfg, ""), (cfg.params, "params.")):
        for name, tp in _fields(obj).items():
            _check_type(f"{prefix}{name}", getattr(obj, name), tp)
    _check_numbers(cfg)
    _check_names(cfg)
    cls.check_config(cfg, None)
    if data is not None:
        _check_data(cfg, data)
        if data.labelled:
            cfg.params = cls.resolve_params(cfg.params, data)
        cls.check_config(cfg, data)
    return cfg


def _check_data(cfg, data) -> None:
    """What every method needs of its training data."""
    from . import dist

    world = dist.planned_world_size()
    if data.image_size != cfg.image_size:
        raise ConfigError(f"the training images are {data.image_size} px but --image_size={cfg.image_size}: "
                          f"set --image_size={data.image_size} (the backbone's stem and the crops follow it)")
    if data.num_samples is not None and cfg.batch_size * world > data.num_samples:
        procs = f" x {world} processes" if world > 1 else ""
        raise ConfigError(f"--batch_size={cfg.batch_size}{procs} is larger than the {data.num_samples} training "
                          "images; lower it")


def _check_numbers(cfg) -> None:
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
    need(0 <= cfg.final_lr_ratio < 1, "final_lr_ratio", "must be in [0, 1)")
    need(16 <= cfg.image_size <= 1024, "image_size", "must be between 16 and 1024 pixels (32 for the lab, 96 for "
                                                     "STL-10, 224 for ImageNet)")
    need(math.isfinite(cfg.stream_above_gb) and cfg.stream_above_gb > 0, "stream_above_gb", "must be a number > 0")
    need(cfg.workers >= -1, "workers", "must be -1 (one per CPU core), 0 (none) or a number of processes")
    for key in ("epochs", "batch_size", "lr_batch_size", "knn_k"):
        need(getattr(cfg, key) >= 1, key, "must be at least 1")
    need(cfg.knn_temperature > 0, "knn_temperature", "must be > 0")
    need(cfg.knn_every >= 0, "knn_every", "must be >= 0 (0: no kNN monitor)")
    need(0 <= cfg.warmup_epochs <= cfg.epochs, "warmup_epochs", f"must be between 0 and --epochs={cfg.epochs}")
    need(all(isinstance(m, int) and 0 < m < cfg.epochs for m in cfg.lr_milestones)
         and list(cfg.lr_milestones) == sorted(set(cfg.lr_milestones)), "lr_milestones",
         f"must be increasing epochs between 1 and --epochs-1 ({cfg.epochs - 1})")


def _check_names(cfg) -> None:
    """Backbone, dataset, subset, device, optional packages: known and usable here."""
    import re
    from pathlib import Path

    import torch

    import labdata

    from .backbones import BACKBONES

    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"--backbone={cfg.backbone}: unknown; one of {sorted(BACKBONES)}")
    for key in ("subset", "eval_subset"):
        subset = str(getattr(cfg, key))
        if subset not in ("", "full", "none", "None", "lab", "mini") and not (subset.isdigit() and int(subset) > 0):
            raise ConfigError(f"--{key}={subset}: use lab, mini, full, or a positive number of images per class")
    subset = str(cfg.subset)
    if cfg.dataset not in labdata.datasets():
        if not Path(cfg.dataset).expanduser().exists():
            raise ConfigError(f"unknown dataset {cfg.dataset!r}: use one of {labdata.datasets()}, or the path of an "
                              "image folder (labelled: train/<class>/*, test/<class>/*; or images at any depth "
                              "without labels) or of a .tar/.tar.gz of one")
        if subset in ("lab", "mini"):
            raise ConfigError(f"--subset={cfg.subset} is defined for {labdata.datasets()} only; with a folder of "
                              "images use --subset=full or --subset=N (N images per class; N images in all "
                              "without labels)")
    if cfg.eval_dataset and cfg.eval_dataset not in labdata.datasets() and \
            not Path(cfg.eval_dataset).expanduser().exists():
        raise ConfigError(f"--eval_dataset={cfg.eval_dataset}: no such data set or path; use one of "
                          f"{labdata.datasets()} or a folder with train/<class>/* and test/<class>/* (or val/)")
    own_folder = cfg.eval_dataset and cfg.eval_dataset not in labdata.datasets()
    if own_folder and labdata.layout(cfg.eval_dataset) != "labelled":
        raise ConfigError(f"--eval_dataset={cfg.eval_dataset} is not a labelled set of images: it needs "
                          "train/<class>/* and test/<class>/* (or val/<class>/*)")
    if own_folder and str(cfg.eval_subset) in ("lab", "mini"):
        raise ConfigError(f"--eval_subset={cfg.eval_subset} is defined for {labdata.datasets()} only; with a folder "
                          "use --eval_subset=full or a number of images per class")
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


