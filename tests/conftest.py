"""Shared fixtures: tiny synthetic MNIST-shaped data, so no test needs the real download."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.data import MNIST


def make_tiny_mnist(n_train: int = 50, n_test: int = 20, seed: int = 0) -> MNIST:
    """Random uint8 images and labels 0-9 in MNIST's layout; every digit occurs in train."""
    rng = np.random.default_rng(seed)
    return MNIST(
        x_train=rng.integers(0, 256, size=(n_train, 784), dtype=np.uint8),
        y_train=rng.permutation(np.arange(n_train, dtype=np.int64) % 10),
        x_test=rng.integers(0, 256, size=(n_test, 784), dtype=np.uint8),
        y_test=rng.integers(0, 10, size=n_test).astype(np.int64),
        source="synthetic",
    )


@pytest.fixture
def tiny_mnist() -> MNIST:
    """50 train / 20 test random images with labels 0-9."""
    return make_tiny_mnist()
