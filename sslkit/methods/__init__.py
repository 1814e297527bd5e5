"""One file per method, one interface (``Method``), one registry, and ``build_method``."""

from .base import EpochContext, Method
from .deepcluster import DeepCluster, DeepClusterParams
from .sela import SeLa, SelaParams
from .npid import NPID, NpidParams
from .swav import SwAV, SwavParams, swapped_prediction_loss
from .supervised import Supervised, SupervisedParams

from ..config import METHOD_REGISTRY

METHODS: dict[str, type[Method]] = METHOD_REGISTRY  # the config validates against the same registry
METHODS.update({cls.name: cls for cls in (Supervised, SeLa, DeepCluster, SwAV, NPID)})

__all__ = ["build_method", "Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams", "SeLa", "SelaParams", "DeepCluster", "DeepClusterParams", "SwAV", "SwavParams", "NPID", "NpidParams",
           "swapped_prediction_loss"]


def build_method(cfg, num_samples: int) -> Method:
    """The method named by ``cfg.method`` with a fresh backbone ``cfg.backbone``.

    The weights are initialised from ``cfg.seed``, so a config alone reproduces a run.
    """
    from ..backbones import build_backbone
    from ..device import seed_everything

    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {sorted(METHODS)}")
    cls = METHODS[cfg.method]
    if cfg.params is None:
        cfg.params = cls.Params()
    sobel = bool(getattr(cfg.params, "sobel", False))
    seed_everything(cfg.seed)
    backbone = build_backbone(cfg.backbone, dataset=cfg.dataset, sobel=sobel)
    return cls(backbone, cfg.params, num_samples)
