"""Glue between the CLI / study and the library: load data, train a run, evaluate it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from vaelab.core.config import RunConfig
from vaelab.core.device import resolve_device
from vaelab.data.mnist import MNIST, load_mnist
from vaelab.data.tensors import TensorData
from vaelab.evaluation.measures import evaluate
from vaelab.execution.progress import Reporting
from vaelab.models.kernels import kernels_status
from vaelab.training import checkpoint
from vaelab.training.run import Trainer


def start_lines(
    device: torch.device | str, mnist: MNIST, test_images: int, training: bool = True
) -> list[str]:
    """What a run is about to use: the device (and on a CPU what a training step runs on),
    the data and its fingerprint, the test images."""
    total = len(mnist.y_test)
    if test_images < total:
        test = f"a seeded subset of {test_images} of the {total} test images"
    else:
        test = f"all {total} test images"
    step = f" ({kernels_status()})" if training and torch.device(device).type == "cpu" else ""
    return [
        f"device: {device}{step}",
        f"data: {mnist.source} (sha256 {mnist.sha256[:12]})",
        f"test set: {test}",
    ]


def train_run(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    mnist: MNIST | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run `cfg` into `out`, showing progress; returns test measures."""
    console = console or Console()
    device = resolve_device(cfg.train.device)
    mnist = mnist or load_mnist(cfg.data.path)
    data = TensorData.from_mnist(mnist, cfg, device)
    with Reporting(console) as reporting:
        for line in start_lines(device, mnist, len(data.y_test)):
            reporting.line(line)
        model = Trainer(cfg, data, out, reporting.reporter()).fit(resume=resume)
    return evaluate(model, data.x_test, data.y_test, seed=cfg.train.seed)


def evaluate_run(
    run_dir: Path,
    *,
    data_path: Path | None = None,
    device: str = "auto",
    iwae_samples: int = 0,
    test_size: int | None = None,
    line: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Test measures of the finished model in `run_dir`.

    The test images are the run's own seeded subset unless `test_size` asks for another size
    (0: all of them). Returns {"kind", "test_images", "device", "data", "measures"}.
    """
    cfg = checkpoint.read_run_config(run_dir)
    torch_device = resolve_device(device)
    model, _ = checkpoint.load_model(run_dir, torch_device)
    if test_size is not None:
        size = None if test_size == 0 else test_size
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, test_size=size))
    path = data_path if data_path is not None else cfg.data.path
    mnist = load_mnist(path)
    data = TensorData.from_mnist(mnist, cfg, torch_device)
    for text in start_lines(torch_device, mnist, len(data.y_test), training=False):
        line(text)
    if cfg.data.sha256 and cfg.data.sha256 != mnist.sha256:
        line(f"note: the run was trained on other data (sha256 {cfg.data.sha256[:12]})")
    measures = evaluate(
        model, data.x_test, data.y_test, iwae_samples=iwae_samples, seed=cfg.train.seed
    )
    return {
        "kind": cfg.model.kind,
        "latent": cfg.model.latent,
        "test_images": len(data.y_test),
        "device": str(torch_device),
        "data": {"source": mnist.source, "sha256": mnist.sha256},
        "measures": measures,
    }
