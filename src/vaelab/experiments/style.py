"""Style versus digit: does the CVAE (and M2) keep a handwriting style when only the label changes?

The article saw that a CVAE given a wrong label draws something leaning toward that label. Here
six test images are each encoded with their true label, and that one code is decoded with every
label 0-9: one row per image, one column per label. The fixed digit classifier then says how
often the decode reads as the label it was given: near 1 when the label sets the digit and the
code only the style, lower when the code still carries the digit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MplFigure

from vaelab.core.config import ExperimentConfig
from vaelab.core.errors import VaelabError
from vaelab.experiments.common import (
    ExperimentResult,
    Figure,
    Models,
    StudyData,
    needs_judge,
    save_figure,
)
from vaelab.models import kinds
from vaelab.models.classifier import N_CLASSES, DigitClassifier
from vaelab.models.networks import AutoEncoder

NAME = "style"
ROLE = "cvae"  # the model whose codes are decoded with every label (a family's CVAE plays it)
BESIDE_ROLE = "m2"  # shown beside the CVAE where the study trained it: numbers["m2"]
N_IMAGES = 6  # the first test images of the study's fixed subset
SIDE = 28


@torch.no_grad()
def label_swaps(model: AutoEncoder, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each image's code (taken with its true label) decoded with every label 0-9.

    x: (B, 784), y: (B,). Returns (B, 10, 784) pixel probabilities: [i, d] is image i's code
    decoded with label d.
    """
    mu = model.encode(x, y).mu  # (B, Z)
    labels = torch.arange(N_CLASSES)
    codes = mu.unsqueeze(0).expand(N_CLASSES, -1, -1)  # (10, B, Z): one copy per label
    logits = torch.stack([model.decode(codes[d], labels[d].repeat(len(x))) for d in labels])
    return torch.sigmoid(logits).transpose(0, 1)  # (B, 10, 784)


def read_as_given(readings: np.ndarray, true_labels: np.ndarray) -> dict[str, Any]:
    """readings (B, 10): the digit read in image i's decode with label d, at [i, d].

    "mean" and "per_image" count all B * 10 decodes (each image's own label included);
    "swapped_only" counts only the B * 9 whose label differs from the image's true one.
    """
    given = np.arange(N_CLASSES)[None, :]
    hits = readings == given  # (B, 10)
    swapped = given != np.asarray(true_labels)[:, None]  # (B, 10)
    return {
        "mean": float(hits.mean()),
        "per_image": hits.mean(axis=1).tolist(),
        "swapped_only": float(hits[swapped].mean()),
    }


def swap_figure(
    x: torch.Tensor,
    y: torch.Tensor,
    decodes: torch.Tensor,
    readings: np.ndarray,
    z: int,
    model: str = "CVAE",
) -> MplFigure:
    """Rows: the original, then its code decoded with labels 0-9; red titles: read otherwise."""
    rows = len(x)
    fig = MplFigure(figsize=(1.0 * (N_CLASSES + 1), 1.1 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, N_CLASSES + 1, squeeze=False)
    for i in range(rows):
        cells = [(x[i], f"image ({int(y[i])})", "black")]
        for d in range(N_CLASSES):
            colour = "black" if readings[i, d] == d else "red"
            cells.append((decodes[i, d], f"{d}: reads {readings[i, d]}", colour))
        for ax, (pixels, title, colour) in zip(axes[i], cells, strict=True):
            ax.imshow(pixels.reshape(SIDE, SIDE).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7, color=colour)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{model} z={z}: one code per row, decoded with each label 0-9", fontsize=10)
    return fig


def _swaps(
    model: AutoEncoder,
    kind: str,
    z: int,
    x: torch.Tensor,
    y: torch.Tensor,
    classifier: DigitClassifier,
    out_dir: Path | None,
) -> tuple[dict[str, Any], Figure | None]:
    decodes = label_swaps(model, x, y)  # (6, 10, 784)
    readings = classifier.predict(decodes.reshape(-1, SIDE * SIDE)).reshape(len(x), N_CLASSES)
    share = read_as_given(readings, y.numpy())
    if out_dir is None:
        return share, None
    name = f"style_z{z}.png" if kind == ROLE else f"style_{kind}_z{z}.png"
    fig = swap_figure(x, y, decodes, readings, z, kinds.record(kind).title)
    caption = (
        f"Each row keeps one test image's code and changes only the label; the classifier "
        f"reads {share['mean']:.0%} of the decodes as the label given (red: read otherwise)."
    )
    title = f"{kinds.record(kind).title} z={z}: style kept, label changed"
    return share, Figure(save_figure(fig, out_dir, name), title, caption)


def run(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    out_dir: Path | None,
    judge: DigitClassifier | None = None,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """Label swaps of the CVAE at each z of cfg.recon_latents that it was trained at, and of
    M2 beside it where the study trained one (the figures only with `out_dir` and `figures`).

    numbers: {"latents": [z, ...], "by_latent": {"<z>": {"read_as_given": {"mean",
    "per_image", "swapped_only"}, "images": 6, "decodes": 60}}}, and the same under "m2".
    """
    classifier = needs_judge(judge, "style")
    started = time.perf_counter()
    if len(data.x_test) < N_IMAGES:
        raise VaelabError(f"the style figure needs {N_IMAGES} test images, got {len(data.x_test)}")
    x, y = data.x_test[:N_IMAGES], data.y_test[:N_IMAGES]
    latents = [z for z in cfg.recon_latents if (ROLE, z) in models]
    numbers: dict[str, Any] = {"latents": latents, "by_latent": {}}
    drawn: list[Figure] = []
    where = out_dir if figures else None
    for kind in (ROLE, BESIDE_ROLE):
        found = numbers if kind == ROLE else {"latents": [], "by_latent": {}}
        for z in (z for z in cfg.recon_latents if (kind, z) in models):
            share, figure = _swaps(models[(kind, z)], kind, z, x, y, classifier, where)
            found["latents"] = sorted({*found["latents"], z})
            found["by_latent"][str(z)] = {
                "read_as_given": share,
                "images": len(x),
                "decodes": len(x) * N_CLASSES,
            }
            if figure is not None:
                drawn.append(figure)
        if kind != ROLE and found["latents"]:
            numbers[kind] = found
    return ExperimentResult(NAME, numbers, drawn, time.perf_counter() - started)
