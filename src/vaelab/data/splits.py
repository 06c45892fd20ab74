"""Views and splits of MNIST: the [0, 1] floats, the seeded test subset, the labelled images."""

from __future__ import annotations

import numpy as np

from vaelab.core.errors import VaelabError

N_CLASSES = 10


def to_float(x_uint8: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1] (pixel / 255), the models' input and Bernoulli target."""
    return np.asarray(x_uint8, dtype=np.float32) / np.float32(255.0)


# offsets of data.seed: the fixed draws of binarised images, and the choice of validation images
TRAIN_DRAW, TEST_DRAW, VALIDATION_DRAW, VALIDATION_CHOICE = 0, 1, 2, 3
DRAWS = {"train": TRAIN_DRAW, "test": TEST_DRAW, "validation": VALIDATION_DRAW}


def binarized(x_uint8: np.ndarray, seed: int) -> np.ndarray:
    """One seeded Bernoulli draw of each pixel with probability pixel / 255, as uint8 0 or 255
    (so that `to_float` gives 0 or 1)."""
    p = to_float(x_uint8)
    u = np.random.default_rng(seed).random(p.shape, dtype=np.float32)
    return np.where(u < p, np.uint8(255), np.uint8(0))


def pixels(x_uint8: np.ndarray, binarize: str, seed: int, split: str) -> np.ndarray:
    """The images as a run sees them: grey levels, or a fixed binary draw (the test and
    validation splits always, the training split when binarize is static)."""
    if binarize == "none" or (split == "train" and binarize == "dynamic"):
        return x_uint8
    return binarized(x_uint8, seed + DRAWS[split])


def test_subset(y_test: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed, seeded subset of `n` test images (None or >= all: all).

    The article evaluates on 2,000 test images; a seed makes every run use the same ones.
    """
    total = len(y_test)
    if n is None or n >= total:
        return np.arange(total)
    if n < 0:
        raise VaelabError(f"test subset size {n} is negative")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


test_subset.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def validation_split(y_train: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the training images to train on and of the `n` held out for
    validation: a seeded, class-balanced choice (`labelled_mask` with seed + VALIDATION_CHOICE),
    so the validation set is the same for every run seed."""
    if n == 0:
        return np.arange(len(y_train)), np.arange(0)
    if n >= len(y_train):
        raise VaelabError(
            f"data.validation ({n}) must leave some of the {len(y_train)} training images"
        )
    held = labelled_mask(y_train, n, seed + VALIDATION_CHOICE)
    return np.flatnonzero(~held), np.flatnonzero(held)


def labelled_mask(y_train: np.ndarray, n_labelled: int, seed: int) -> np.ndarray:
    """Which training images keep their label: exactly `n_labelled`, class-balanced, seeded.

    Each class gets n_labelled // 10 or one more (the extras go to random classes); a class
    too small to fill its share gives all it has and the rest is spread over the others.
    """
    y = np.asarray(y_train)
    if not 0 <= n_labelled <= len(y):
        raise VaelabError(f"cannot label {n_labelled} of {len(y)} training images")
    if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
        raise VaelabError(f"training labels must be 0-9 to pick labelled images, got {y.min()}")
    rng = np.random.default_rng(seed)
    quota = _class_quotas(np.bincount(y, minlength=N_CLASSES), n_labelled, rng)
    mask = np.zeros(len(y), dtype=bool)
    for label, k in enumerate(quota):
        mask[rng.choice(np.flatnonzero(y == label), size=int(k), replace=False)] = True
    return mask


def _class_quotas(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split `n` over classes as evenly as their `sizes` allow (water filling).

    Every open class rises by the same share each pass; a class that runs out closes; the last
    few (fewer than the open classes) go one each to open classes picked at random.
    """
    quota = np.zeros_like(sizes)
    remaining = n
    while remaining > 0:  # each pass closes a class or leaves fewer than the open classes
        room = np.flatnonzero(quota < sizes)
        share = remaining // len(room)
        if share == 0:
            quota[rng.choice(room, size=remaining, replace=False)] += 1
            break
        add = np.minimum(share, sizes[room] - quota[room])
        quota[room] += add
        remaining -= int(add.sum())
    return quota


def semi_supervised_labels(y_train: np.ndarray, n_labelled: int, seed: int) -> np.ndarray:
    """int64 labels with -1 ("no label") for the images `labelled_mask` leaves out."""
    labels = np.asarray(y_train).astype(np.int64, copy=True)
    labels[~labelled_mask(y_train, n_labelled, seed)] = -1
    return labels


def class_counts(y: np.ndarray) -> list[int]:
    """Images per digit 0-9, ignoring -1 (unlabelled)."""
    y = np.asarray(y)
    return np.bincount(y[y >= 0], minlength=N_CLASSES).tolist()
