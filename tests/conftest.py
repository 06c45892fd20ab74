"""Shared fixtures: tiny synthetic MNIST-shaped data, so no test needs the real download.

Under CI (`CI=true`, as `.ci/run` sets) nothing may skip: CI installs everything the tests
need (a C compiler for the fused kernels, chromium, the dev extras), so a test that would skip
there, for want of a compiler, a browser or a package, fails instead and says why.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.core.config import ModelConfig
from vaelab.data import MNIST
from vaelab.experiments.common import Models, StudyData
from vaelab.models.kinds import build_model

pytest_plugins = ["pytester"]  # tests/test_ci.py runs pytest on a file of its own


def _share_the_cores() -> None:
    """Under pytest-xdist (scripts/test.sh runs one worker per core), each worker and every
    process it starts gets its share of the cores: torch's threads spin while they wait, so
    two workers of two threads each on two cores stall each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores()


@pytest.fixture(scope="session")
def tiny_preset_study(tmp_path_factory) -> tuple[Path, float]:
    """The tiny preset's study on real MNIST, run once a session, and how long it took.
    Tests copy the folder before running anything in it (`copy_study`)."""
    from vaelab.study.pipeline import run_study

    out = tmp_path_factory.mktemp("tiny-preset") / "study"
    started = time.perf_counter()
    run_study("tiny", out, device="cpu")
    return out, time.perf_counter() - started


def copy_study(source: Path, out: Path) -> Path:
    """A copy of a finished study folder: a rerun there reuses what the settings leave alone."""
    import shutil

    shutil.copytree(source, out)
    return out


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, a skipped test (skip, skipif, importorskip) is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and under_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which installs all a test needs: {reason}"


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


def make_prototype_mnist(n_train: int = 400, n_test: int = 100, seed: int = 0) -> MNIST:
    """Learnable MNIST-shaped data: each digit is a fixed random binary image with 5% noise.

    A model that learns anything beats the per-pixel-mean baseline on it by far, which
    random images would not allow.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784)) < 0.3

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % 10).astype(np.int64)
        flips = rng.random((n, 784)) < 0.05
        return ((prototypes[y] ^ flips) * 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return MNIST(x_train, y_train, x_test, y_test, source="prototypes")


@pytest.fixture
def prototype_mnist() -> MNIST:
    return make_prototype_mnist()


@pytest.fixture
def prototype_npz(tmp_path, prototype_mnist) -> str:
    """The prototype data as an .npz that `--data` accepts."""
    path = tmp_path / "mnist.npz"
    m = prototype_mnist
    np.savez(path, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    return str(path)


def tiny_study(n: int = 200, seed: int = 0) -> StudyData:
    """Random images in [0, 1] with labels 0-9, MNIST-shaped, as the experiments take them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=g)
    y = torch.arange(n) % 10
    return StudyData(x_test=x, y_test=y, x_train=x[:20], y_train=y[:20])


def tiny_models(latents: tuple[int, ...]) -> Models:
    """Untrained AE, VAE and CVAE at each latent size, seeded, in eval mode."""
    torch.manual_seed(0)
    kinds = ("ae", "vae", "cvae")
    return {
        (k, z): build_model(ModelConfig(kind=k, latent=z)).eval() for k in kinds for z in latents
    }
