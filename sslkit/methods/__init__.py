"""One file per method, one interface (``Method``), one registry."""

from .base import EpochContext, Method
from .supervised import Supervised, SupervisedParams

METHODS: dict[str, type[Method]] = {
    Supervised.name: Supervised,
}

__all__ = ["Method", "EpochContext", "METHODS", "Supervised", "SupervisedParams"]
