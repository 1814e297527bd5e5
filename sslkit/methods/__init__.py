"""One file per method, one interface (``Method``), one registry."""

from .base import EpochContext, Method
from .deepcluster import DeepCluster, DeepClusterParams
from .sela import SeLa, SelaParams
from .supervised import Supervised, SupervisedParams

METHODS: dict[str, type[Method]] = {
    Supervised.name: Supervised,
    SeLa.name: SeLa,
    DeepCluster.name: DeepCluster,
}

__all__ = ["Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams", "SeLa", "SelaParams", "DeepCluster", "DeepClusterParams"]
