"""labdata: the datasets of the labs, as tensors, offline once fetched.

    import labdata
    images, labels, classes = labdata.load("cifar10", split="train", subset="lab")

See ``labdata.load`` for sources (official files through torchvision, or an image-folder
copy named by ``LABDATA_CIFAR10`` / ``LABDATA_CIFAR100`` / ``LABDATA_SVHN``) and subsets.
"""

from .cache import cache_root
from .errors import LabDataError
from .loader import LabData, available, fetch, info, load, load_image_folder
from .registry import CIFAR100_COARSE_CLASSES, CIFAR100_FINE_TO_COARSE, CIFAR10_CLASSES, SPECS
from .subsets import balanced_indices
from .toy import make_blobs, make_rings

__all__ = [
    "load", "load_image_folder", "available", "fetch", "info", "datasets",
    "LabData", "LabDataError", "make_blobs", "make_rings", "balanced_indices", "cache_root",
    "CIFAR10_CLASSES", "CIFAR100_COARSE_CLASSES", "CIFAR100_FINE_TO_COARSE",
]


def datasets() -> list[str]:
    """Names accepted by ``load``."""
    return sorted(SPECS)
