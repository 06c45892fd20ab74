"""Experiment 4: k-means on the test latents, scored against the true digits.

The article ran k-means 50 times per model and latent size and compared the V-measure box
plots (claims 7 and 8). A single k-means run depends on its seed, so every run is kept and
summarised. Besides the V-measure (equal to NMI with the arithmetic mean) each run gets the
adjusted Rand index and the accuracy after the best cluster-to-digit matching, and k-means on
the raw pixels gives the baseline a latent space has to beat.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, v_measure_score
from threadpoolctl import threadpool_limits

from vaelab.config import ExperimentConfig
from vaelab.experiments.common import (
    ExperimentResult,
    Figure,
    Models,
    StudyData,
    display_name,
    encode_entries,
    save_figure,
)

METRICS = ("v_measure", "ari", "accuracy")
BASELINE = "pixels"  # the row of k-means on the raw test pixels


def hungarian_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of points whose cluster maps to their digit under the best one-to-one matching.

    Cluster ids are arbitrary, so plain agreement is meaningless; the Hungarian method picks
    the matching that maximises agreement. With more clusters than digits the unmatched
    clusters count as wrong, with fewer the unmatched digits do.
    """
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape or labels.size == 0:
        raise ValueError("labels and clusters must be non-empty and of the same shape")
    _, label_ids = np.unique(labels, return_inverse=True)
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    counts = np.zeros((cluster_ids.max() + 1, label_ids.max() + 1), dtype=np.int64)
    np.add.at(counts, (cluster_ids.ravel(), label_ids.ravel()), 1)  # contingency matrix
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / labels.size)


def cluster_scores(
    features: np.ndarray, labels: np.ndarray, *, n_clusters: int = 10, runs: int = 50, seed: int = 0
) -> dict[str, list[float]]:
    """V-measure, ARI and Hungarian accuracy of `runs` k-means fits, run i seeded seed + i.

    One initialisation per run (n_init=1), as in the article: the spread over seeds is part
    of the result, not noise to be optimised away by keeping the best of many starts.
    k-means runs on one thread: at a few thousand points its OpenMP threads gain nothing, and
    beside torch's own OpenMP pool on a busy 2-core machine they made it 20-40x slower.
    """
    scores: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for i in range(runs):
        kmeans = KMeans(n_clusters, n_init=1, random_state=seed + i, algorithm="lloyd")
        with threadpool_limits(limits=1):
            clusters = kmeans.fit_predict(features)
        scores["v_measure"].append(float(v_measure_score(labels, clusters)))
        scores["ari"].append(float(adjusted_rand_score(labels, clusters)))
        scores["accuracy"].append(hungarian_accuracy(labels, clusters))
    return scores


def summarize(values: list[float]) -> dict[str, float]:
    """Mean, sample sd (ddof=1; 0.0 for a single value), min, median and max."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if array.size > 1 else 0.0,
        "min": float(array.min()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


def run(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """Cluster the test latents of every model at each z in cfg.recon_latents, plus pixels.

    `figures=False` leaves the box plots out: a study with several seeds draws them once,
    pooled over its seeds (`pooled_box_plots`)."""
    start = time.perf_counter()
    labels = data.y_test.numpy()

    def scored(features: np.ndarray) -> dict[str, dict[str, Any]]:
        runs = cluster_scores(
            features, labels, n_clusters=cfg.kmeans_clusters, runs=cfg.kmeans_runs, seed=cfg.seed
        )
        return {metric: {**summarize(values), "values": values} for metric, values in runs.items()}

    by_latent: dict[str, dict[str, Any]] = {}
    drawn: list[Figure] = []
    pixels: dict[str, Any] | None = None  # the same for every z: computed once, when needed
    for latent in cfg.recon_latents:
        entries = encode_entries(models, data.x_test, data.y_test, latent)
        if not entries:
            continue
        if pixels is None:
            pixels = scored(data.x_test.double().numpy())
        rows = {name: scored(features) for name, features in entries.items()}
        by_latent[str(latent)] = {**rows, BASELINE: pixels}
        if figures:
            drawn.append(_save_box_plot(by_latent[str(latent)], latent, cfg, out_dir))
    numbers = {"runs": cfg.kmeans_runs, "clusters": cfg.kmeans_clusters, "by_latent": by_latent}
    seconds = time.perf_counter() - start
    return ExperimentResult(name="clustering", numbers=numbers, figures=drawn, seconds=seconds)


def pooled_box_plots(
    per_seed: Mapping[int, dict[str, Any]], cfg: ExperimentConfig, out_dir: Path
) -> list[Figure]:
    """One box plot per z of the V-measures of every seed's k-means runs, pooled; each run is
    also drawn as a dot coloured by its seed, so a seed that differs from the others shows."""
    seeds = list(per_seed)
    latents = list(dict.fromkeys(z for n in per_seed.values() for z in n.get("by_latent", {})))
    figures = []
    for z in latents:
        values = _values_by_seed(per_seed, z)  # {row: {seed: V-measures}}
        names = list(values)
        runs = sum(len(v) for v in values[names[0]].values()) if names else 0
        title = f"k-means on z={z} latents: V-measure over {runs} runs ({len(seeds)} seeds)"
        pooled = {
            name: [x for v in by_seed.values() for x in v] for name, by_seed in values.items()
        }
        fig = box_plot(pooled, title)
        _mark_seeds(fig.axes[0], names, values, seeds)
        path = save_figure(fig, out_dir, f"clustering_z{z}.png")
        caption = (
            f"Each box pools the V-measure of {cfg.kmeans_runs} k-means runs "
            f"({cfg.kmeans_clusters} clusters) on the z={z} test latents of each of the "
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); the dots are the runs, one "
            "colour per seed. Compare the medians with each other and with the grey raw-pixel "
            "baseline, and the dots of one colour with the others for what the seed changes."
        )
        figures.append(Figure(path=path, title=title, caption=caption))
    return figures


def _values_by_seed(per_seed: Mapping[int, dict[str, Any]], z: str) -> dict[str, dict[int, list]]:
    values: dict[str, dict[int, list]] = {}
    for seed, numbers in per_seed.items():
        for name, row in numbers.get("by_latent", {}).get(z, {}).items():
            values.setdefault(name, {})[seed] = row["v_measure"]["values"]
    return values


def _mark_seeds(
    ax: Any, names: list[str], values: dict[str, dict[int, list[float]]], seeds: list[int]
) -> None:
    colours = matplotlib.colormaps["tab10"]
    for i, seed in enumerate(seeds):
        offset = (i - (len(seeds) - 1) / 2) * 0.12
        for x, name in enumerate(names, start=1):
            ys = values[name].get(seed, [])
            label = f"seed {seed}" if x == 1 else None
            ax.scatter([x + offset] * len(ys), ys, s=6, color=colours(i % 10), label=label)
    ax.legend(loc="best", fontsize=8)


def _save_box_plot(
    rows: dict[str, dict[str, Any]], latent: int, cfg: ExperimentConfig, out_dir: Path
) -> Figure:
    title = f"k-means on z={latent} latents: V-measure over {cfg.kmeans_runs} runs"
    fig = box_plot({name: row["v_measure"]["values"] for name, row in rows.items()}, title)
    path = save_figure(fig, out_dir, f"clustering_z{latent}.png")
    caption = (
        f"Each box holds the V-measure of {cfg.kmeans_runs} k-means runs ({cfg.kmeans_clusters} "
        f"clusters) on the z={latent} test latents; compare the medians with each other and "
        "with the grey raw-pixel baseline, and the box heights for how much a run's seed matters."
    )
    return Figure(path=path, title=title, caption=caption)


def box_plot(values: dict[str, list[float]], title: str) -> MplFigure:
    """One box per row of per-run scores; the pixel baseline is grey with a dashed median."""
    names = list(values)
    fig = MplFigure(figsize=(1.4 * len(names) + 2.0, 4.5), layout="constrained")
    ax = fig.subplots()
    boxes = ax.boxplot([values[n] for n in names], patch_artist=True, widths=0.6)
    for name, patch in zip(names, boxes["boxes"], strict=True):
        patch.set_facecolor("lightgrey" if name == BASELINE else "tab:blue")
        patch.set_alpha(0.7)
    if BASELINE in values:
        median = float(np.median(values[BASELINE]))
        ax.axhline(median, color="grey", linestyle="--", linewidth=1, label="pixels median")
        ax.legend(loc="best")
    ticks = [n if n == BASELINE else display_name(n).replace(" (", "\n(") for n in names]
    ax.set_xticks(range(1, len(names) + 1), ticks)
    ax.set_xlabel("features clustered (test latent means, or raw pixels)")
    ax.set_ylabel("V-measure against the true digits")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig
