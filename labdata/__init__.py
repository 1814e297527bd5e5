"""labdata: the datasets of the labs, as tensors, offline once fetched.

    import labdata
    images, labels, classes = labdata.load("cifar10", split="train", subset="lab")

See ``labdata.load`` for sources (official files through torchvision, or an image-folder
copy named by ``LABDATA_CIFAR10`` / ``LABDATA_CIFAR100`` / ``LABDATA_SVHN``) and subsets;
STL-10 (``stl10``) from its official binary files; ImageNet (``imagenet``) from the folder
``LABDATA_IMAGENET`` names. ``labdata.load_unlabelled(path)`` reads every image of a folder
(any depth) or archive without labels; ``labdata.scan_images`` lists them without decoding.
"""

from .cache import cache_root
from .errors import LabDataError
from .files import FileImages, ImageFiles, decode_files, layout, scan_images
from .imagefolder import decode_image, fit_square
from .loader import LabData, available, fetch, info, load, load_image_folder, load_unlabelled
from .registry import CIFAR100_COARSE_CLASSES, CIFAR100_FINE_TO_COARSE, CIFAR10_CLASSES, SPECS
from .subsets import balanced_indices, random_indices
from .toy import make_blobs, make_rings

__all__ = [
    "load", "load_image_folder", "load_unlabelled", "available", "fetch", "info", "datasets",
    "scan_images", "layout", "ImageFiles", "FileImages", "decode_files", "decode_image", "fit_square",
    "random_indices",
    "LabData", "LabDataError", "make_blobs", "make_rings", "balanced_indices", "cache_root",
    "CIFAR10_CLASSES", "CIFAR100_COARSE_CLASSES", "CIFAR100_FINE_TO_COARSE",
]


def datasets() -> list[str]:
    """Names accepted by ``load``."""
    return sorted(SPECS)
