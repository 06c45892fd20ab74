"""MNIST: its sources and checks (`sources`, `mnist`), its splits (`splits`) and the tensors a
run trains on (`tensors`). The names users import from `vaelab.data` are here."""

from vaelab.core.util import default_cache_dir
from vaelab.data.mnist import MNIST, MNIST_SIZES, N_PIXELS, content_sha256, load_mnist, validate
from vaelab.data.sources import (
    DEFAULT_MIRRORS,
    HUB_MEMBER,
    HUB_REQUIREMENT,
    HUB_SHA256,
    IDX_FILES,
    IDX_MD5,
    ROLES,
)
from vaelab.data.splits import (
    N_CLASSES,
    class_counts,
    labelled_mask,
    semi_supervised_labels,
    test_subset,
    to_float,
)

__all__ = [
    "DEFAULT_MIRRORS",
    "HUB_MEMBER",
    "HUB_REQUIREMENT",
    "HUB_SHA256",
    "IDX_FILES",
    "IDX_MD5",
    "MNIST",
    "MNIST_SIZES",
    "N_CLASSES",
    "N_PIXELS",
    "ROLES",
    "class_counts",
    "content_sha256",
    "default_cache_dir",
    "labelled_mask",
    "load_mnist",
    "semi_supervised_labels",
    "test_subset",
    "to_float",
    "validate",
]
