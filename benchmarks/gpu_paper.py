"""A preset's training time on one device (default: `converged-1000`, the article's models
for 1000 full epochs), measured over a few epochs.

Trains the preset's units as the study does (one group per model kind and seed, its latent
sizes stacked) for `--epochs` epochs on `--device`, times each epoch after a warm-up one, and
projects the preset's full training (its steps, every kind, `--seeds` seeds one after another,
as one worker per GPU runs them) from the median. With `--train-size` (fewer images than the
preset trains on) each epoch's time is scaled up by the ratio of the images, which assumes an
epoch's cost linear in its images; it says so, with the number measured. Nothing is written to
disk but a temporary folder. On a GPU, run it alone on the device:

    PYTHONPATH=src python benchmarks/gpu_paper.py --device cuda --epochs 3 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vaelab.core.config import load_preset
from vaelab.core.device import resolve_device
from vaelab.data.mnist import load_mnist
from vaelab.data.tensors import compact_data
from vaelab.training.trainer import GroupTrainer, TrainingRun


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per group")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--preset", default="converged-1000")
    parser.add_argument("--train-size", type=int, default=None, help="fewer images (smoke run)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cfg = load_preset(args.preset)
    mnist = load_mnist(cfg.data.path)
    preset_images = cfg.data.train_size or len(mnist.x_train)
    measured = min(args.train_size or preset_images, preset_images)
    scale = preset_images / measured  # an epoch's cost taken as linear in its images
    if scale != 1:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, train_size=measured))
    images = torch.from_numpy(mnist.x_train).to(device)
    t = cfg.train  # the preset's length in epochs of its own images (it may end mid-epoch)
    epochs = t.total_steps(preset_images) / t.steps_per_epoch(preset_images)
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="vaelab-gpu-") as tmp:
        for kind in cfg.models:
            runs = [cfg.run_config(kind, z) for z in cfg.latents]  # one seed's unit
            members = [
                TrainingRun(r, compact_data(mnist, r, device, images), Path(tmp) / f"{kind}{i}")
                for i, r in enumerate(runs)
            ]
            trainer = GroupTrainer(members)
            seconds = []
            for _ in range(args.epochs + 1):  # the first is a warm-up
                sync(device)
                started = time.perf_counter()
                trainer.train_epoch()
                sync(device)
                seconds.append(time.perf_counter() - started)
            epoch = statistics.median(seconds[1:] or seconds)
            total += epoch * scale * epochs * args.seeds
            print(
                f"{kind}: a unit of {len(members)} models, {epoch:.3f} s/epoch on {device} "
                f"({measured} images)"
            )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.preset} preset, {args.seeds} seeds, {epochs:.3g} epochs: "
        f"projected training {total / 60:.1f} min on {name} (torch {torch.__version__})"
    )
    if scale != 1:
        print(
            f"measured on {measured} of the preset's {preset_images} training images, each "
            f"epoch scaled x{scale:.3g}: assumes an epoch's cost linear in its images"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
