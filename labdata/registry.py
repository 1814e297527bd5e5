"""What labdata knows about each dataset: official files, checksums, splits, classes.

The official URLs and MD5 sums are those published by the datasets' authors (and used by
torchvision's own dataset classes). Tests may replace an entry's checksums with those of
tiny files they build in the same formats, so the verification path is exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

CIFAR100_COARSE_CLASSES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
]

# The standard fixed map from the 100 fine labels (sorted class names, the official
# label order) to the 20 superclasses.
CIFAR100_FINE_TO_COARSE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]

SVHN_CLASSES = [str(d) for d in range(10)]

# the order of class_names.txt in the official STL-10 archive (labels 1..10 in the files)
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


@dataclass
class DatasetSpec:
    name: str
    description: str
    splits: tuple[str, ...]
    num_classes: int
    image_size: int
    env_var: str  # names an image-folder tree or .tar/.tar.gz of one
    # official source
    url: str | None  # one archive holding every split (CIFAR)
    archive_md5: str | None
    base_folder: str | None
    files: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # split -> [(file, md5)]
    meta_file: tuple[str, str] | None = None
    split_urls: dict[str, str] = field(default_factory=dict)  # SVHN: one file per split
    # lab subsets: images per class for each split
    # (for a split without labels, such as STL-10's unlabelled images, the number of images)
    subsets: dict[str, dict[str, int]] = field(default_factory=dict)
    homepage: str = ""
    # the split self-supervised methods train on (STL-10: its 5,000 labelled and 100,000 unlabelled
    # images together), and the splits without labels
    ssl_split: str = "train"
    unlabelled_splits: tuple[str, ...] = ()
    # read from its folder only (ImageNet: no automatic download; sslkit streams it from the folder)
    folder_only: bool = False
    test_split: str = "test"  # the split evaluation queries (ImageNet: val)
    cache_official: bool = True  # keep decoded official files as tensors (STL-10's binary files read as fast)


SPECS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="cifar10",
        description="CIFAR-10: 60,000 32x32 colour images in 10 classes (Krizhevsky, 2009)",
        splits=("train", "test"),
        num_classes=10,
        image_size=32,
        env_var="LABDATA_CIFAR10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        base_folder="cifar-10-batches-py",
        files={
            "train": [("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                      ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                      ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                      ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                      ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")],
            "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
        },
        meta_file=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
        subsets={"lab": {"train": 1000, "test": 200}, "mini": {"train": 100, "test": 20}},
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        description="CIFAR-100: 60,000 32x32 colour images, 100 fine classes in 20 superclasses",
        splits=("train", "test"),
        num_classes=100,
        image_size=32,
        env_var="LABDATA_CIFAR100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
        base_folder="cifar-100-python",
        files={"train": [("train", "16019d7e3df5f24257cddd939b257f8d")],
               "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")]},
        meta_file=("meta", "7973b15100ade9c7d40fb424638fde48"),
        subsets={"lab": {"train": 100, "test": 20}, "mini": {"train": 10, "test": 2}},
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "svhn": DatasetSpec(
        name="svhn",
        description="SVHN: 32x32 crops of house-number digits (Netzer et al., 2011), cropped-digits format",
        splits=("train", "test", "extra"),
        num_classes=10,
        image_size=32,
        env_var="LABDATA_SVHN",
        url=None,
        archive_md5=None,
        base_folder="svhn",
        files={"train": [("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373")],
               "test": [("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3")],
               "extra": [("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7")]},
        split_urls={s: f"http://ufldl.stanford.edu/housenumbers/{s}_32x32.mat"
                    for s in ("train", "test", "extra")},
        subsets={"lab": {"train": 1000, "test": 200, "extra": 1000},
                 "mini": {"train": 100, "test": 20, "extra": 100}},
        homepage="http://ufldl.stanford.edu/housenumbers/",
    ),
}

SPECS["stl10"] = DatasetSpec(
    name="stl10",
    description="STL-10: 96x96 colour images, 5,000 labelled training images in 10 classes, 8,000 test images "
                "and 100,000 unlabelled images (Coates, Lee, Ng, 2011), the official binary files",
    splits=("train", "test", "unlabeled", "train+unlabeled"),
    num_classes=10,
    image_size=96,
    env_var="LABDATA_STL10",
    url="http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",  # torchvision's source and checksums
    archive_md5="91f7769df0f17e558f3565bffb0c7dfb",
    base_folder="stl10_binary",
    files={"train": [("train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"),
                     ("train_y.bin", "5a34089d4802c674881badbb80307741")],
           "test": [("test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"),
                    ("test_y.bin", "36f9794fa4beb8a2c72628de14fa638e")],
           "unlabeled": [("unlabeled_X.bin", "5242ba1fed5e4be9e1e742405eb56ca4")],
           "train+unlabeled": [("train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"),
                               ("unlabeled_X.bin", "5242ba1fed5e4be9e1e742405eb56ca4")]},
    subsets={"lab": {"train": 100, "test": 50, "unlabeled": 5000, "train+unlabeled": 5000},
             "mini": {"train": 10, "test": 5, "unlabeled": 500, "train+unlabeled": 500}},
    homepage="https://cs.stanford.edu/~acoates/stl10/",
    ssl_split="train+unlabeled",
    unlabelled_splits=("unlabeled", "train+unlabeled"),
    cache_official=False,
)

SPECS["imagenet"] = DatasetSpec(
    name="imagenet",
    description="ImageNet ILSVRC-2012: 1.28 million training images in 1,000 classes, 50,000 validation images; "
                "read from its folder (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) named by LABDATA_IMAGENET",
    splits=("train", "val"),
    num_classes=1000,
    image_size=224,
    env_var="LABDATA_IMAGENET",
    url=None,
    archive_md5=None,
    base_folder=None,
    homepage="https://image-net.org/challenges/LSVRC/2012/",
    folder_only=True,
    test_split="val",
)

TOY_DATASETS = ("blobs", "rings")


def get_spec(name: str) -> DatasetSpec:
    from .errors import LabDataError

    key = name.lower().replace("-", "")
    if key not in SPECS:
        known = ", ".join(sorted(SPECS))
        raise LabDataError(
            f"unknown dataset {name!r}. Known image datasets: {known}; toy generators: "
            f"labdata.make_blobs, labdata.make_rings. An image-folder tree can be loaded with "
            f"labdata.load_image_folder(path)."
        )
    return SPECS[key]
