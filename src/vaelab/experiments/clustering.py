"""Experiment 4: k-means on the test latents, scored against the true digits.

The article ran k-means 50 times per model and latent size and compared the V-measure box
plots (claims 7 and 8): 50 calls of scikit-learn's `KMeans(n_clusters=10)`, which in 2018
meant k-means++ starts and n_init=10, the best of ten starts kept in each call
(`experiments.kmeans_n_init`; every run's starts in one batched computation, `kmeans`). A
single k-means run depends on its seed, so every run is kept and summarised. Besides the
V-measure (equal to NMI with the arithmetic mean) each run gets the adjusted Rand index and
the accuracy after the best cluster-to-digit matching, and k-means on the raw pixels gives
the baseline a latent space has to beat. Where the study trained an M2, its q(y|x)'s most
probable label is scored as one more clustering, beside k-means on its codes.

The restarts are noise of the measuring instrument, not independent models: what the claims
weigh is each model's V-measure averaged over its restarts, with its test-image resamples
(the (cluster, digit) pairs of every run resampled and scored again, no new k-means run).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MplFigure
from scipy.optimize import linear_sum_assignment

from vaelab.core.config import ExperimentConfig
from vaelab.evaluation.evidence import EVIDENCE, estimate, resample_counts
from vaelab.evaluation.measured import ClusteringEvidence
from vaelab.experiments import kmeans
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
from vaelab.models.networks import AutoEncoder

METRICS = ("v_measure", "ari", "accuracy")
BASELINE = "pixels"  # the row of k-means on the raw test pixels
CLASSIFIER = "m2 (q(y|x) argmax)"  # the row of M2's classifier read as a clustering


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


def kmeans_labels(
    features: np.ndarray, *, n_clusters: int = 10, runs: int = 50, seed: int = 0, n_init: int = 1
) -> np.ndarray:
    """(runs, M) cluster ids of `runs` k-means fits, run i seeded seed + i, each the best of
    its `n_init` k-means++ starts (`kmeans.kmeans_runs`: scikit-learn's Lloyd, batched)."""
    labels, _ = kmeans.kmeans_runs(
        features, n_clusters=n_clusters, runs=runs, n_init=n_init, seed=seed
    )
    return labels.astype(np.int64)


def cluster_scores(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_clusters: int = 10,
    runs: int = 50,
    seed: int = 0,
    n_init: int = 1,
) -> dict[str, list[float]]:
    """V-measure, ARI and Hungarian accuracy of `runs` k-means fits (see `kmeans_labels`)."""
    clusterings = kmeans_labels(
        features, n_clusters=n_clusters, runs=runs, seed=seed, n_init=n_init
    )
    return scores_of(clusterings, labels)


def scores_of(clusterings: np.ndarray, labels: np.ndarray) -> dict[str, list[float]]:
    """Each run's V-measure, ARI and Hungarian accuracy, from its (digit, cluster) table.

    The same floats as scikit-learn's `v_measure_score` and `adjusted_rand_score` (tested for
    equality): its formulas, its order of operations and sums, and its integer pair counts;
    one table per run counted at once instead of two of scikit-learn's passes per run, which
    cost more than the k-means runs themselves at the article's 50 runs."""
    clusterings = np.asarray(clusterings)
    scores: dict[str, list[float]] = {metric: [] for metric in METRICS}
    if len(clusterings) == 0:
        return scores
    _, digits = np.unique(labels, return_inverse=True)  # every row of a table: a digit present
    tables = _tables(clusterings, digits.reshape(-1))  # (runs, digits, clusters)
    n = len(digits)
    h_digits = _entropy(tables[0].sum(1))
    for table in tables:
        table = table[:, table.sum(0) > 0]  # the clusters a run used, as scikit-learn's ids
        scores["v_measure"].append(_v_measure(table, h_digits))
        scores["ari"].append(_ari(table, n))
        rows, cols = linear_sum_assignment(table.T, maximize=True)
        scores["accuracy"].append(float(table.T[rows, cols].sum() / n))
    return scores


def _tables(clusterings: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """(runs, digits, clusters) counts of every run's (digit, cluster) pairs, in one bincount."""
    runs = len(clusterings)
    offset = int(clusterings.min()) if clusterings.size else 0
    ids = (clusterings - offset).astype(np.int64)
    k, d = int(ids.max()) + 1, int(digits.max()) + 1
    cells = np.arange(runs, dtype=np.int64)[:, None] * (d * k) + digits[None] * k + ids
    return np.bincount(cells.ravel(), minlength=runs * d * k).reshape(runs, d, k)


def _entropy(sizes: np.ndarray) -> float:
    """scikit-learn's entropy of a labelling, from its class sizes."""
    pi = sizes[sizes > 0].astype(np.float64)
    if pi.size == 1:
        return 0.0
    pi_sum = np.sum(pi)
    return float(-np.sum((pi / pi_sum) * (np.log(pi) - math.log(pi_sum))))


def _v_measure(table: np.ndarray, h_digits: float) -> float:
    """scikit-learn's V-measure (beta = 1) of a (digits, clusters) table with no empty column."""
    h_clusters = _entropy(table.sum(0))
    mi = _mutual_information(table)
    homogeneity = mi / h_digits if h_digits else 1.0
    completeness = mi / h_clusters if h_clusters else 1.0
    if homogeneity + completeness == 0.0:
        return 0.0
    return float((1 + 1.0) * homogeneity * completeness / (1.0 * homogeneity + completeness))


def _mutual_information(table: np.ndarray) -> float:
    """scikit-learn's `mutual_info_score` from its contingency table (a row per digit present,
    a column per cluster used): the nonzero cells in row-major order, its logs and its one sum."""
    pi, pj = table.sum(1), table.sum(0)
    if pi.size == 1 or pj.size == 1:
        return 0.0
    nzx, nzy = np.nonzero(table)
    nz_val = table[nzx, nzy]
    total = int(table.sum())
    log_contingency_nm = np.log(nz_val)
    contingency_nm = nz_val / total
    outer = pi.take(nzx).astype(np.int64) * pj.take(nzy).astype(np.int64)
    log_outer = -np.log(outer) + math.log(pi.sum()) + math.log(pj.sum())
    mi = contingency_nm * (log_contingency_nm - math.log(total)) + contingency_nm * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def _ari(table: np.ndarray, n: int) -> float:
    """scikit-learn's adjusted Rand index from its pair confusion matrix, in integers."""
    n_c, n_k = table.sum(1), table.sum(0)
    sum_squares = int((table.astype(np.int64) ** 2).sum())
    fp = int((table @ n_k).sum()) - sum_squares
    fn = int((table.T @ n_c).sum()) - sum_squares
    tp = sum_squares - n
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def v_measure_of_counts(table: np.ndarray) -> np.ndarray:
    """V-measure (sklearn's, beta = 1) of contingency tables (..., clusters, digits)."""
    table = np.asarray(table, dtype=np.float64)
    n = table.sum(axis=(-2, -1), keepdims=True)
    p = table / n
    p_k, p_c = p.sum(-1, keepdims=True), p.sum(-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = np.where(p > 0, p * np.log(p / (p_k * p_c)), 0.0).sum(axis=(-2, -1))
        h_c = -np.where(p_c > 0, p_c * np.log(p_c), 0.0).sum(axis=(-2, -1))
        h_k = -np.where(p_k > 0, p_k * np.log(p_k), 0.0).sum(axis=(-2, -1))
        homogeneity = np.where(h_c > 0, mi / h_c, 1.0)
        completeness = np.where(h_k > 0, mi / h_k, 1.0)
        total = homogeneity + completeness
        v = np.where(total > 0, 2 * homogeneity * completeness / total, 0.0)
    return v


def v_measure_estimate(clusterings: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The V-measure averaged over the runs, and the same on each test-image resample: each
    run's (cluster, digit) pairs resampled, scored again, and averaged over the runs."""
    _, digits = np.unique(labels, return_inverse=True)
    n_digits = int(digits.max()) + 1
    counts = resample_counts(len(labels))  # (B, M)
    full, boot = [], []
    for clusters in np.asarray(clusterings):
        _, ids = np.unique(clusters, return_inverse=True)
        cell = ids * n_digits + digits  # (M,)
        onehot = np.zeros((len(cell), (int(ids.max()) + 1) * n_digits), dtype=np.float32)
        onehot[np.arange(len(cell)), cell] = 1.0
        shape = (int(ids.max()) + 1, n_digits)
        full.append(v_measure_of_counts(onehot.sum(0).reshape(shape)))
        boot.append(v_measure_of_counts((counts @ onehot).reshape(-1, *shape)))
    return estimate(float(np.mean(full)), np.mean(boot, axis=0), len(labels))


def _scored(
    features: np.ndarray, labels: np.ndarray, clusters: int, runs: int, seed: int, n_init: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each metric's summary and per-run values, and the V-measure's estimate."""
    found = kmeans_labels(features, n_clusters=clusters, runs=runs, seed=seed, n_init=n_init)
    return _scored_clusters(found, labels)


@torch.no_grad()
def classifier_clusters(model: AutoEncoder, x: torch.Tensor, batch: int = 2000) -> np.ndarray:
    """(1, M): M2's q(y|x) argmax for each image, as one clustering."""
    found = [model.predict_proba(x[i : i + batch]).argmax(-1) for i in range(0, len(x), batch)]
    return torch.cat(found).numpy()[None]


def _scored_clusters(
    clusterings: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, Any], dict[str, Any]]:
    scores = scores_of(clusterings, labels)
    summary = {metric: {**summarize(v), "values": v} for metric, v in scores.items()}
    return summary, v_measure_estimate(clusterings, labels)


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
    out_dir: Path | None,
    judge: DigitClassifier | None = None,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """Cluster the test latents of every model at each z in cfg.recon_latents, plus pixels.

    Draws one box plot per z; a study with several seeds draws them again over every seed's
    runs (`pooled_box_plots`, the same files); none without `figures`. `judge` is not used.
    Without `out_dir`, only the rows the claims read: no CVAE given the true label, no
    pixels, no q(y|x)."""
    start = time.perf_counter()
    labels = data.y_test.numpy()

    def scored(features: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        e = cfg
        return _scored(features, labels, e.kmeans_clusters, e.kmeans_runs, e.seed, e.kmeans_n_init)

    by_latent: dict[str, dict[str, Any]] = {}
    evidence: dict[str, dict[str, Any]] = {}
    drawn: list[Figure] = []
    pixels: tuple[dict[str, Any], dict[str, Any]] | None = None  # the same for every z: once
    for latent in cfg.recon_latents:
        # the claims read no code encoded with its true label
        entries = encode_entries(models, data.x_test, data.y_test, latent, out_dir is not None)
        if not entries:
            continue
        rows = {name: scored(features) for name, features in entries.items()}
        if out_dir is None:
            by_latent[str(latent)] = {name: row[0] for name, row in rows.items()}
            evidence[str(latent)] = {name: row[1] for name, row in rows.items()}
            continue
        if pixels is None:
            pixels = pixel_baseline(data.x_test.numpy(), labels, cfg)
        m2 = models.get(("m2", latent))
        if m2 is not None:  # q(y|x)'s argmax: a clustering of its own, one deterministic run
            rows[CLASSIFIER] = _scored_clusters(classifier_clusters(m2, data.x_test), labels)
        rows[BASELINE] = pixels
        by_latent[str(latent)] = {name: row[0] for name, row in rows.items()}
        evidence[str(latent)] = {name: row[1] for name, row in rows.items()}
        if figures:
            drawn.append(_save_box_plot(by_latent[str(latent)], latent, cfg, out_dir))
    numbers = {
        "runs": cfg.kmeans_runs,
        "n_init": cfg.kmeans_n_init,
        "clusters": cfg.kmeans_clusters,
        "by_latent": by_latent,
        EVIDENCE: ClusteringEvidence(v_measure=evidence).to_json(),
    }
    seconds = time.perf_counter() - start
    return ExperimentResult(name="clustering", numbers=numbers, figures=drawn, seconds=seconds)


def pixel_baseline(
    x: np.ndarray, labels: np.ndarray, cfg: ExperimentConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """k-means on the raw test pixels: the same for every model, seed and epoch, so it is
    computed once per process for the same images and settings (the costliest clustering:
    784 dimensions against a model's few)."""
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + labels.tobytes()).hexdigest()
    key = (digest, cfg.kmeans_clusters, cfg.kmeans_runs, cfg.seed, cfg.kmeans_n_init)
    if key not in _PIXELS:
        if len(_PIXELS) >= 4:
            _PIXELS.pop(next(iter(_PIXELS)))
        _PIXELS[key] = _scored(x, labels, *key[1:])
    return copy.deepcopy(_PIXELS[key])


_PIXELS: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}  # a pure memo


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
            f"({cfg.kmeans_clusters} clusters, {_starts(cfg)}) on the z={z} test latents of "
            f"each of the {len(seeds)} seeds ({', '.join(map(str, seeds))}); the black line is "
            "the median, the hollow circles each seed's own median. Compare the medians with "
            "each other and with the grey raw-pixel baseline, and the circles for what the seed "
            "changes."
            + (" The CVAE given the true label has its own scale." if SEPARATE in names else "")
        )
        figures.append(Figure(path=path, title=title, caption=caption))
    return figures


def _starts(cfg: ExperimentConfig) -> str:
    n = cfg.kmeans_n_init
    return "one k-means++ start each" if n == 1 else f"each the best of {n} k-means++ starts"


def _values_by_seed(per_seed: Mapping[int, dict[str, Any]], z: str) -> dict[str, dict[int, list]]:
    values: dict[str, dict[int, list]] = {}
    for seed, numbers in per_seed.items():
        for name, row in numbers.get("by_latent", {}).get(z, {}).items():
            values.setdefault(name, {})[seed] = row["v_measure"]["values"]
    return values


def _mark_seeds(
    ax: Any, names: list[str], values: dict[str, dict[int, list[float]]], seeds: list[int]
) -> None:
    """Each seed's median over its runs as a small hollow grey circle beside its box (the
    box's own median stays the only line in its colour)."""
    axes = {name: (a, x) for a, labels in _panels(ax.figure, names) for x, name in labels}
    for name, (panel, x) in axes.items():
        medians = [float(np.median(values[name][s])) for s in seeds if values[name].get(s)]
        panel.scatter([x + 0.4] * len(medians), medians, s=14, facecolors="none",
                      edgecolors="dimgrey", linewidths=0.8, zorder=3)  # fmt: skip
    ax.scatter([], [], s=14, facecolors="none", edgecolors="dimgrey", label="one seed's median")
    ax.legend(loc="best", fontsize=8)


def _save_box_plot(
    rows: dict[str, dict[str, Any]], latent: int, cfg: ExperimentConfig, out_dir: Path
) -> Figure:
    title = f"k-means on z={latent} latents: V-measure over {cfg.kmeans_runs} runs"
    fig = box_plot({name: row["v_measure"]["values"] for name, row in rows.items()}, title)
    path = save_figure(fig, out_dir, f"clustering_z{latent}.png")
    caption = (
        f"Each box holds the V-measure of {cfg.kmeans_runs} k-means runs ({cfg.kmeans_clusters} "
        f"clusters, {_starts(cfg)}) on the z={latent} test latents; compare the medians with "
        "each other and with the grey raw-pixel baseline, and the box heights for how much a "
        "run's seed matters."
    )
    return Figure(path=path, title=title, caption=caption)


SEPARATE = "cvae (true label)"  # told the digit: its own panel and scale, far below the rest


def box_plot(values: dict[str, list[float]], title: str) -> MplFigure:
    """One box per row of per-run scores, medians drawn black; the pixel baseline is grey
    with a dashed median line; the CVAE given the true label, whose codes no longer hold the
    digit, gets its own panel and scale so the others' gaps stay readable."""
    names = [n for n in values if n != SEPARATE]
    apart = [n for n in values if n == SEPARATE]
    fig = MplFigure(figsize=(1.4 * len(values) + 2.0, 4.5), layout="constrained")
    axes = fig.subplots(1, 1 + bool(apart), squeeze=False,
                        width_ratios=[len(names), 1.3][: 1 + bool(apart)])[0]  # fmt: skip
    for ax, shown in zip(axes, (names, apart), strict=False):
        _boxes(ax, {n: values[n] for n in shown})
    ax = axes[0]
    if BASELINE in values:
        median = float(np.median(values[BASELINE]))
        ax.axhline(median, color="grey", linestyle="--", linewidth=1, label="pixels median")
        ax.legend(loc="best")
    ax.set_ylabel("V-measure against the true digits")
    if apart:
        axes[1].set_title("told the digit:\nits own scale", fontsize=9)
    fig.supxlabel("features clustered (test latent means, or raw pixels)", fontsize=10)
    fig.suptitle(title)
    return fig


def _boxes(ax: Any, values: dict[str, list[float]]) -> None:
    names = list(values)
    boxes = ax.boxplot([values[n] for n in names], patch_artist=True, widths=0.6,
                       medianprops={"color": "black", "linewidth": 2.2})  # fmt: skip
    for name, patch in zip(names, boxes["boxes"], strict=True):
        patch.set_facecolor("lightgrey" if name == BASELINE else "#9ecae1")
    ticks = [n if n == BASELINE else display_name(n).replace(" (", "\n(") for n in names]
    ax.set_xticks(range(1, len(names) + 1), ticks)
    ax.grid(axis="y", alpha=0.3)


def _panels(fig: MplFigure, names: list[str]) -> list[tuple[Any, list[tuple[int, str]]]]:
    """Each panel of a `box_plot` with the (x, row name) of its boxes."""
    main = [n for n in names if n != SEPARATE]
    apart = [n for n in names if n == SEPARATE]
    return [(ax, list(enumerate(shown, start=1)))
            for ax, shown in zip(fig.axes, (main, apart), strict=False)]  # fmt: skip
