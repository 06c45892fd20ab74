"""Glue between the CLI / study and the library: load data, train a run, evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from vaelab import checkpoint
from vaelab.config import RunConfig
from vaelab.data import MNIST, load_mnist
from vaelab.evaluate import evaluate
from vaelab.progress import RichReporter, make_progress
from vaelab.train import TensorData, Trainer, resolve_device


def train_run(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    mnist: MNIST | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run `cfg` into `out` with a progress bar; returns test measures."""
    device = resolve_device(cfg.train.device)
    mnist = mnist or load_mnist(cfg.data.path)
    data = TensorData.from_mnist(mnist, cfg, device)
    with make_progress(console) as progress:
        model = Trainer(cfg, data, out, RichReporter(progress)).fit(resume=resume)
    return evaluate(model, data.x_test, data.y_test, seed=cfg.train.seed)


def evaluate_run(
    run_dir: Path, *, data_path: Path | None = None, device: str = "auto", iwae_samples: int = 0
) -> dict[str, Any]:
    """Test measures of the finished model in `run_dir`, on the test images it was trained with."""
    cfg = checkpoint.read_run_config(run_dir)
    torch_device = resolve_device(device)
    model, _ = checkpoint.load_model(run_dir, torch_device)
    path = data_path if data_path is not None else cfg.data.path
    data = TensorData.from_mnist(load_mnist(path), cfg, torch_device)
    return evaluate(model, data.x_test, data.y_test, iwae_samples=iwae_samples, seed=cfg.train.seed)
