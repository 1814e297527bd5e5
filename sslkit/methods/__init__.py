"""One file per method, one interface (``Method``), one registry."""

from .base import EpochContext, Method
from .sela import SeLa, SelaParams
from .supervised import Supervised, SupervisedParams

METHODS: dict[str, type[Method]] = {
    Supervised.name: Supervised,
    SeLa.name: SeLa,
}

__all__ = ["Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams", "SeLa", "SelaParams"]
