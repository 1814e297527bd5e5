"""One file per method, one interface (``Method``), one registry."""

from .base import EpochContext, Method
from .deepcluster import DeepCluster, DeepClusterParams
from .sela import SeLa, SelaParams
from .npid import NPID, NpidParams
from .swav import SwAV, SwavParams, swapped_prediction_loss
from .supervised import Supervised, SupervisedParams

from ..config import METHOD_REGISTRY

METHODS: dict[str, type[Method]] = METHOD_REGISTRY  # the config validates against the same registry
METHODS.update({cls.name: cls for cls in (Supervised, SeLa, DeepCluster, SwAV, NPID)})

__all__ = ["Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams", "SeLa", "SelaParams", "DeepCluster", "DeepClusterParams", "SwAV", "SwavParams", "NPID", "NpidParams",
           "swapped_prediction_loss"]
