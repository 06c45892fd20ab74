"""Shared by the reliability tests: tiny data on disk, a vaelab subprocess, tree hashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import make_prototype_mnist

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {
    **os.environ,
    "PYTHONPATH": str(SRC),
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VAELAB_NO_NETWORK": "1",
    "COLUMNS": "200",
}

MICRO_STUDY = """\
name = "micro"
models = ["ae", "vae"]
latents = [2, 4]

[model]
hidden = 16

[train]
epochs = 2
batch_size = 50
checkpoint_every = 1
eval_every = 1
device = "cpu"

[data]
train_size = 300
test_size = 100
n_labelled = 100

[experiments]
recon_latents = [2, 4]
kmeans_runs = 2
iwae_samples = 4
iwae_images = 20
elbo_samples = 1
walk_steps = 4
classifier_epochs = 1
"""


def write_npz(path: Path, n_train: int = 300, n_test: int = 100) -> Path:
    m = make_prototype_mnist(n_train, n_test)
    np.savez(path, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    return path


def vaelab(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run the `vaelab` CLI in a fresh Python, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def start(*args: str) -> subprocess.Popen:
    """Start `python *args` in the background with the test environment."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def tree_hash(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `root` (folders too, as 'dir')."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found
