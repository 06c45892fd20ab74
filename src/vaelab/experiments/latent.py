"""Experiment 3: where each model puts the test images in a 2-D latent space.

The article judged its scatter plots by eye (claims 5 and 6: AE latents sit far from the
origin, VAE/CVAE ones near it; the AE separates digits best). Here each claim gets a number:
the centre and radius for claim 5, and separation measures for claim 6 that do not depend on
the scale of the latents, because the AE's codes are many times larger than the
KL-regularised VAE's and a raw distance would compare units, not separation. The plain
measures ignore one overall scale; their "whitened" twins are measured after each model's
codes are decorrelated and scaled to unit variance, which removes any invertible linear map
(a decoder can undo one at no cost, so it carries no information about separation).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from vaelab.core.config import ExperimentConfig
from vaelab.core.errors import VaelabError
from vaelab.evaluation.evidence import EVIDENCE, Estimate, mean_estimate, statistic_estimate
from vaelab.evaluation.measured import LatentEvidence
from vaelab.experiments.common import (
    ExperimentResult,
    Figure,
    Models,
    StudyData,
    display_name,
    encode_entries,
    save_figure,
)
from vaelab.models.classifier import DigitClassifier

NEIGHBOURS = 10  # k of the k-nearest-neighbours digit classifier
FOLDS = 5  # cross-validation folds for that classifier


def latent_stats(latents: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Centre, spread and digit separation of `latents` (M, Z) against the true `labels`."""
    return measure_latents(latents, labels, seed=seed)[0]


def measure_latents(
    latents: np.ndarray, labels: np.ndarray, *, seed: int = 0
) -> tuple[dict[str, Any], Estimate, Estimate]:
    """`latent_stats`' numbers, and the estimates claims 5 and 6 weigh: the centre offset and
    whether each image's digit is named by its neighbours among the whitened codes.

    "spread" is the population sd (ddof=0) per dimension. "knn_accuracy" (10-NN, 5 seeded
    stratified folds) and "silhouette" (by true digit) are unchanged when all latents are
    multiplied by one constant, so the AE and the VAE can be compared despite their scales;
    "knn_accuracy_whitened" and "silhouette_whitened" are the same on `whiten(latents)`,
    unchanged by any invertible linear map of the latents (per-axis scales included).
    """
    latents = np.asarray(latents, dtype=np.float64)
    labels = np.asarray(labels)
    digits = np.unique(labels)
    if len(latents) != len(labels) or len(digits) < 2:
        raise VaelabError("latent statistics need one label per point and at least two digits")
    centre = latents.mean(axis=0)
    white = whiten(latents)
    named = knn_correct(white, labels, seed=seed)
    offset = statistic_estimate(lambda i: centre_offset(latents, i), len(latents))
    stats = {
        "centre": centre.tolist(),
        "spread": latents.std(axis=0).tolist(),
        "centre_norm": float(np.linalg.norm(centre)),
        "centre_offset": float(centre_offset(latents, np.arange(len(latents))[None, :])[0]),
        "mean_radius": float(np.linalg.norm(latents, axis=1).mean()),
        "digit_centres": {str(d): latents[labels == d].mean(axis=0).tolist() for d in digits},
        "knn_accuracy": float(knn_correct(latents, labels, seed=seed).mean()),
        "silhouette": float(silhouette_score(latents, labels)),
        "knn_accuracy_whitened": float(named.mean()),
        "silhouette_whitened": float(silhouette_score(white, labels)),
    }
    return stats, offset, mean_estimate(named)


def centre_offset(latents: np.ndarray, index: np.ndarray) -> np.ndarray:
    """For each row of `index` (m, k) (a resample of the points): the distance of the mean
    code from the origin in units of the cloud's RMS distance from that mean, (m,).

    0 for a cloud around the origin; well above 1 for one that sits off it, whatever its scale.
    """
    points = np.asarray(latents, dtype=np.float64)[index]  # (m, k, Z)
    centre = points.mean(axis=1, keepdims=True)  # (m, 1, Z)
    radius = np.sqrt(((points - centre) ** 2).sum(-1).mean(-1))  # (m,)
    return np.linalg.norm(centre[:, 0], axis=-1) / np.maximum(radius, 1e-12)


def whiten(latents: np.ndarray) -> np.ndarray:
    """(M, Z) -> (M, Z') centred codes with identity covariance (PCA whitening).

    Directions with no variance (below 1e-9 of the largest) are dropped rather than blown up:
    rounding noise scaled to unit variance would pose as a dimension of the code.
    """
    centred = latents - latents.mean(axis=0)
    variances, axes = np.linalg.eigh(np.atleast_2d(np.cov(centred, rowvar=False)))
    keep = variances > 1e-9 * max(float(variances.max()), 0.0)
    if not keep.any():
        return centred[:, :1] * 0.0  # every code is the same point
    return centred @ axes[:, keep] / np.sqrt(variances[keep])


def knn_correct(latents: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per point: does a k-NN digit classifier, fitted on the other folds, name its digit?

    Cross-validated (5 seeded stratified folds), so every point is judged by neighbours it was
    not fitted with. Unlike the silhouette it does not reward compact, round clusters, only
    that a point's neighbours share its digit, which is what "separates digits" means in a
    scatter plot. Its mean is the accuracy; per point it pairs two models' codes image by image.
    """
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    k = min(NEIGHBOURS, len(labels) - math.ceil(len(labels) / FOLDS))  # tiny inputs
    with threadpool_limits(limits=1):  # as in clustering: one thread is faster at this size
        predicted = cross_val_predict(
            KNeighborsClassifier(n_neighbors=k), latents, labels, cv=folds
        )
    return (predicted == labels).astype(np.float64)


def knn_accuracy(latents: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-NN digit classifier: how well digits separate locally."""
    return float(knn_correct(latents, labels, seed=seed).mean())


def run(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    out_dir: Path | None,
    judge: DigitClassifier | None = None,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """Scatter and measure the test latents of every model with latent size cfg.plot_latent
    (`judge` is not used; the scatter only with `out_dir` and `figures`)."""
    start = time.perf_counter()
    latent = cfg.plot_latent
    entries = encode_entries(models, data.x_test, data.y_test, latent)
    if not entries:
        return ExperimentResult(name="latent", numbers={})
    if latent < 2:
        raise VaelabError("experiments.plot_latent must be >= 2 for a 2-D latent plot")
    labels = data.y_test.numpy()
    measured = {name: measure_latents(z, labels, seed=cfg.seed) for name, z in entries.items()}
    stats = {name: m[0] for name, m in measured.items()}
    offset = {name: m[1] for name, m in measured.items()}
    evidence = LatentEvidence(offset=offset, knn={name: m[2] for name, m in measured.items()})
    numbers = {"latent": latent, "models": stats, EVIDENCE: evidence.to_json()}
    if out_dir is None or not figures:
        return ExperimentResult("latent", numbers, seconds=time.perf_counter() - start)
    title = plot_title(latent)
    fig = scatter_figure(entries, labels, stats, title, seed=cfg.seed)
    path = save_figure(fig, out_dir, f"latent_z{latent}.png")
    caption = (
        "Each dot is one test image's latent mean, coloured by its true digit; compare how far "
        "each panel's cloud sits from the origin (+) and how cleanly the colours separate."
    )
    return ExperimentResult(
        name="latent",
        numbers=numbers,
        figures=[Figure(path=path, title=title, caption=caption)],
        seconds=time.perf_counter() - start,
    )


def scatter_figure(
    entries: dict[str, np.ndarray],
    labels: np.ndarray,
    stats: dict[str, dict[str, Any]],
    title: str,
    *,
    seed: int = 0,
) -> MplFigure:
    """One panel per entry: the first two latent dimensions, coloured by digit."""
    cols = min(len(entries), 2)
    rows = math.ceil(len(entries) / cols)
    fig = MplFigure(figsize=(5.2 * cols + 1.2, 4.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    # A seeded drawing order, so no digit is always painted on top of the others.
    order = np.random.default_rng(seed).permutation(len(labels))
    colours = colormaps["tab10"](labels[order] % 10)
    for ax, (name, z) in zip(axes, entries.items(), strict=False):
        _scatter_panel(ax, z[order], colours, name, stats[name]["centre"])
    for ax in axes[len(entries) :]:
        ax.set_visible(False)
    handles = [_legend_dot(colormaps["tab10"](d), str(d)) for d in range(10)]
    handles.append(Line2D([], [], color="black", marker="+", linestyle="", label="origin"))
    fig.legend(handles=handles, title="digit", loc="outside right center")
    fig.suptitle(title)
    return fig


def plot_title(latent: int) -> str:
    """The figure's title; above z=2 it says that only two dimensions are drawn."""
    shown = "" if latent == 2 else f" (first 2 of {latent} dimensions shown)"
    return f"Test-image latent means at z={latent}{shown}"


def _scatter_panel(ax: Axes, z: np.ndarray, colours: np.ndarray, name: str, centre: list) -> None:
    """One model's cloud; the origin is marked so its distance from the cloud shows."""
    ax.scatter(z[:, 0], z[:, 1], c=colours, s=4, alpha=0.6, linewidths=0)
    ax.plot([0], [0], marker="+", color="black", markersize=12, markeredgewidth=1.5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(f"{display_name(name)}\ncentre ({centre[0]:.2f}, {centre[1]:.2f})")


def _legend_dot(colour: Any, label: str) -> Line2D:
    return Line2D([], [], color=colour, marker="o", linestyle="", markersize=6, label=label)
