"""What every experiment takes and returns.

An experiment is a module with one function of one signature (`Experiment`):
`run(models, data, cfg, out_dir, judge=None) -> ExperimentResult`. It reads trained models,
computes its numbers, saves its figures under `out_dir`, reads images with the digit
classifier `judge` where it needs one, and knows nothing about training, seeds or the other
experiments. `out_dir=None` asks for the numbers the claims read and nothing else (no
figures, no measure only the tables show): the claims at milestone steps, on training
images and with the AE trained the other way are judged on such numbers. `figures=False`
(keyword) asks for every number and no figure: every seed's but the first's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402

from vaelab.core import fileio  # noqa: E402
from vaelab.core.config import ExperimentConfig  # noqa: E402
from vaelab.core.errors import VaelabError  # noqa: E402
from vaelab.models import kinds  # noqa: E402
from vaelab.models.classifier import DigitClassifier  # noqa: E402
from vaelab.models.kinds.base import INFERRED_LABEL, NO_LABEL, TRUE_LABEL, Mode  # noqa: E402
from vaelab.models.networks import AutoEncoder  # noqa: E402

Models = dict[tuple[str, int], AutoEncoder]  # (kind, latent size) -> trained model, eval mode


@dataclass(frozen=True)
class StudyData:
    """The images the experiments look at (CPU tensors, float in [0, 1])."""

    x_test: torch.Tensor  # (M, 784)
    y_test: torch.Tensor  # (M,) int64, true labels
    x_train: torch.Tensor  # (N, 784), for the digit classifier
    y_train: torch.Tensor  # (N,) int64, true labels
    test_index: np.ndarray | None = None  # (M,) each test image's index in MNIST's test set


@dataclass(frozen=True)
class Figure:
    path: str  # relative to the study folder, e.g. "figures/clustering_z16.png"
    title: str
    caption: str  # one sentence: what to look at


@dataclass
class ExperimentResult:
    name: str
    numbers: dict[str, Any]  # JSON-ready: str keys, floats / ints / lists / dicts
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0


FIGURE_DIR = "figures"


def save_figure(fig: MplFigure, out_dir: Path, name: str, dpi: int = 110) -> str:
    """Write `fig` as PNG to out_dir/figures/name atomically; returns the relative path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    relative = f"{FIGURE_DIR}/{name}"
    fileio.write_bytes(Path(out_dir) / relative, buffer.getvalue())
    return relative


@torch.no_grad()
def encode_means(
    model: AutoEncoder, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 2000
) -> np.ndarray:
    """The latent means of `x` (AE: its code), (M, Z) float64 numpy."""
    parts = []
    for start in range(0, len(x), batch):
        yb = None if y is None else y[start : start + batch]
        parts.append(model.embed(x[start : start + batch], yb))
    return torch.cat(parts).double().numpy()


def first_of_digit(y: torch.Tensor, digit: int) -> int:
    """Index of the first test image of `digit` (the experiments' fixed choice)."""
    hits = (y == digit).nonzero()
    if len(hits) == 0:
        raise VaelabError(f"the test images hold no {digit}: use a larger data.test_size")
    return int(hits[0])


def encode_entries(
    models: Models, x: torch.Tensor, y: torch.Tensor, latent: int, true_label: bool = True
) -> dict[str, np.ndarray]:
    """The latent means of `x` per model of size `latent`, in the order ae, vae, cvae.

    A label-using model (the CVAE) gets two entries, "<kind> (no label)" and
    "<kind> (true label)", because the article's question is what the label adds (the second
    only with `true_label`). M2 given no label encodes with the label its q(y|x) reads:
    "m2 (inferred label)".
    """
    entries: dict[str, np.ndarray] = {}
    for kind in kinds.names():
        model = models.get((kind, latent))
        if model is None:
            continue
        if model.uses_labels:
            unlabelled = INFERRED_LABEL if model.has_classifier else NO_LABEL
            entries[Mode(kind, unlabelled).name] = encode_means(model, x)
            if true_label:
                entries[Mode(kind, TRUE_LABEL).name] = encode_means(model, x, y)
        else:
            entries[kind] = encode_means(model, x)
    return entries


def display_name(name: str) -> str:
    """A model's name in figures, its kind's title: "cvae (no label)" becomes "CVAE (no
    label)", "conv-vae" "conv VAE"; another name's first word in capitals."""
    kind, _, mode = name.partition(" ")
    return kinds.title_of(name) or f"{kind.upper()} {mode}".strip()


class Experiment(Protocol):
    def __call__(
        self,
        models: Models,
        data: StudyData,
        cfg: ExperimentConfig,
        out_dir: Path | None,
        judge: DigitClassifier | None = None,
        *,
        figures: bool = True,
    ) -> ExperimentResult: ...


def needs_judge(judge: DigitClassifier | None, experiment: str) -> DigitClassifier:
    """The digit classifier an experiment reads images with; without one, one clear line."""
    if judge is None:
        raise VaelabError(f"experiment {experiment} reads images: give it the digit classifier")
    return judge
