"""One file per method, one interface (``Method``), one registry."""

from .base import EpochContext, Method
from .deepcluster import DeepCluster, DeepClusterParams
from .sela import SeLa, SelaParams
from .npid import NPID, NpidParams
from .swav import SwAV, SwavParams, swapped_prediction_loss
from .supervised import Supervised, SupervisedParams

METHODS: dict[str, type[Method]] = {
    Supervised.name: Supervised,
    SeLa.name: SeLa,
    DeepCluster.name: DeepCluster,
    SwAV.name: SwAV,
    NPID.name: NPID,
}

__all__ = ["Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams", "SeLa", "SelaParams", "DeepCluster", "DeepClusterParams", "SwAV", "SwavParams", "NPID", "NpidParams",
           "swapped_prediction_loss"]
