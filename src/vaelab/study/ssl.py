"""The semi-supervised study: what the unlabelled images buy, as test error against labels given.

For each seed and each number of labelled images n (a seeded, class-balanced choice, the same
images for every model of that seed: `data.tensors.training_split` with the run seed, outside
the validation split), it trains M2, with `article_m2` M2 with the article's architecture too,
and, when the study lists it, the CVAE, through the study's own units. Then, on the test set:
- M2: the error of q(y|x)'s most probable digit at the epoch of its lowest error on the
  validation images (`data.validation`, held out of training), as Pyro's example reports it,
  and at the last epoch (without a validation split: the last epoch's alone);
- labelled only: the same q(y|x) network trained on the n labelled images alone (its best
  validation step likewise);
- CVAE + kNN: a 5-nearest-neighbour classifier on the CVAE's codes (no label given), fitted on
  the n labelled images; CVAE + k-means: 10 clusters of its test codes, matched one to one to
  the digits (the clustering accuracy of experiment 4, which reads the test labels);
- the paper's M2 (Kingma et al. 2014, table 1).

A sibling of the article's study on the same runner: its runs train as work units through
`execution`, the labelled-only network in `training.labelled_only`, the interval of what the
unlabelled images bought comes from `evaluation.inference.mean_interval` and the figure from
`experiments.semi_supervised`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from vaelab.core import fileio
from vaelab.core.config import ModelConfig, RunConfig, StudyConfig, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, StudyFolder
from vaelab.core.util import format_duration
from vaelab.data.mnist import MNIST
from vaelab.data.splits import to_float
from vaelab.data.tensors import training_split
from vaelab.evaluation.inference import mean_interval
from vaelab.execution.parallel import ParallelOptions, train_units
from vaelab.experiments.clustering import hungarian_accuracy, kmeans_labels
from vaelab.experiments.common import save_figure
from vaelab.experiments.semi_supervised import FIGURE_FILE, error_figure
from vaelab.report.ssl_page import write_ssl_report
from vaelab.study.grid import run_dir_for
from vaelab.training import checkpoint
from vaelab.training.labelled_only import labelled_only_error

PAPER_M2 = {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}  # % test error, Kingma et al. 2014
NEIGHBOURS = 5


ARTICLE = "m2-article"  # the key of M2 with the article's architecture (`article_m2`)


def ssl_runs(cfg: StudyConfig, out: Path) -> dict[tuple[str, int, int], tuple[RunConfig, Path]]:
    """{(kind, n labelled, seed): (its settings, its run folder)} for every trained model;
    kind "m2-article" is M2 with the article's architecture."""
    z = cfg.latents[0]
    kinds = [*cfg.models, *([ARTICLE] if cfg.article_m2 else [])]
    found = {}
    for seed in cfg.seeds:
        for n in cfg.label_counts or ():
            for kind in kinds:
                base = cfg.run_config("m2" if kind == ARTICLE else kind, z, seed)
                model = base.model
                if kind == ARTICLE:
                    article = ModelConfig()
                    model = dataclasses.replace(
                        model, hidden=article.hidden, activation=article.activation,
                        label_at=article.label_at, embed=article.embed,
                    )  # fmt: skip
                rc = RunConfig(model, base.train, _with_labels(base, n))
                found[(kind, n, seed)] = (rc, run_dir_for(out, rc))
    return found


def _with_labels(cfg: RunConfig, n: int) -> Any:
    return dataclasses.replace(cfg.data, n_labelled=n, label_seed=None)


def run_ssl(
    cfg: StudyConfig,
    mnist: MNIST,
    out: Path,
    device: torch.device,
    console: Console,
    parallel: ParallelOptions | None = None,
) -> Path:
    """Train every model, measure every method, write results.json, the figure and the report
    page; returns the page's path."""
    started = time.perf_counter()
    runs = ssl_runs(cfg, out)
    console.print(f"semi-supervised study {cfg.name!r}: {len(runs)} models into {out}")
    train_units(list(runs.values()), mnist, out, device, console, parallel)
    trained = time.perf_counter() - started
    x_test = torch.from_numpy(to_float(mnist.x_test))
    y_test = mnist.y_test.astype(np.int64)
    errors: dict[str, dict[int, dict[int, float]]] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    best_epochs: dict[str, dict[str, int]] = {}
    for seed in cfg.seeds:
        for n in cfg.label_counts or ():
            found, logged = _methods(cfg, mnist, runs, n, seed, x_test, y_test)
            for method, error in found.items():
                errors.setdefault(method, {}).setdefault(n, {})[seed] = error
            curves[f"n{n}-seed{seed}"] = logged["curve"]
            best_epochs.setdefault(str(n), {})[str(seed)] = logged["best_epoch"]
            console.print(
                f"{n} labels, seed {seed}: "
                + ", ".join(f"{m} {100 * e:.2f}%" for m, e in found.items())
            )
    validation = cfg.data.validation
    results = {
        "config": to_dict(cfg),
        "label_counts": list(cfg.label_counts or ()),
        "test_images": len(y_test),
        "validation_images": validation,
        "selection": "best validation epoch" if validation else "last epoch",
        "errors": {m: _summaries(by_n) for m, by_n in errors.items()},
        "paper_m2_percent": {str(n): e for n, e in PAPER_M2.items()},
        "unlabelled_bought": unlabelled_bought(errors),
        "m2_best_epoch": best_epochs,
        "m2_test_error_by_epoch": curves,
        "timings": {"training": trained, "total": time.perf_counter() - started},
    }
    folder = StudyFolder(out)
    figure = save_figure(error_figure(results), out, FIGURE_FILE)
    caption = (
        "Each method's test error on all test images, mean ± sd over the seeds; the stars "
        "are the paper's M2. Below the labelled-only line, the unlabelled images helped."
    )
    results["figures"] = {
        "ssl": [{"path": figure, "title": "Test error against labels given", "caption": caption}]
    }
    fileio.write_json(folder.results, results)
    report = write_ssl_report(results, folder.report)
    _print_table(results, console)
    console.print(f"total time: {format_duration(results['timings']['total'])}")
    return report


def unlabelled_bought(errors: Mapping[str, Mapping[int, Mapping[int, float]]]) -> dict[str, Any]:
    """Per label count: the labelled-only net's test error minus M2's, paired by seed (what the
    unlabelled images bought; positive: M2 is better), its mean with a 95% t-interval over the
    seeds (`evaluation.inference.mean_interval`; none with one seed), and whether M2 is below
    in every seed."""
    found = {}
    for n, m2 in errors.get("M2", {}).items():
        alone = errors["labelled only"][n]
        diffs = np.array([alone[seed] - m2[seed] for seed in m2])
        found[str(n)] = {
            "mean": float(diffs.mean()),
            "interval": mean_interval(diffs, 0.95),
            "per_seed": {str(seed): float(d) for seed, d in zip(m2, diffs, strict=True)},
            "every_seed": bool((diffs > 0).all()),
        }
    return found


M2_LAST = "M2 (last epoch)"


def _methods(
    cfg: StudyConfig,
    mnist: MNIST,
    runs: Mapping[tuple[str, int, int], tuple[RunConfig, Path]],
    n: int,
    seed: int,
    x_test: torch.Tensor,
    y_test: np.ndarray,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Each method's test error at (n labels, seed), and M2's logged curve and chosen epoch."""
    m2_cfg, m2_dir = runs[("m2", n, seed)]
    split = training_split(mnist.y_train, m2_cfg)  # the images and labels M2 trained with
    x_all = torch.from_numpy(to_float(mnist.x_train))
    labelled = split.train[split.y_train >= 0]
    x_l, y_l = x_all[labelled], mnist.y_train[labelled].astype(np.int64)
    held = (x_all[split.validation], mnist.y_train[split.validation].astype(np.int64))
    rows = RunFolder(m2_dir).read_metrics()
    chosen = chosen_epoch(rows)
    m2, _ = checkpoint.load_model(m2_dir, "cpu")
    found = {"M2": chosen["test_error"], M2_LAST: error_of(m2, x_test, y_test)}
    if chosen["epoch"] == rows[-1]["epoch"]:
        found["M2"] = found[M2_LAST]  # the saved model, read on every test image
    if (ARTICLE, n, seed) in runs:
        found["M2, article's architecture"] = chosen_epoch(
            RunFolder(runs[(ARTICLE, n, seed)][1]).read_metrics()
        )["test_error"]
    found["labelled only"] = labelled_only_error(
        x_l, y_l, x_test, y_test, cfg.model, cfg.train.lr, seed,
        validation=held if len(split.validation) else None,
    )  # fmt: skip
    if ("cvae", n, seed) in runs:
        cvae, _ = checkpoint.load_model(runs[("cvae", n, seed)][1], "cpu")
        codes_train, codes_test = cvae.embed(x_l).numpy(), cvae.embed(x_test).numpy()
        knn = KNeighborsClassifier(n_neighbors=min(NEIGHBOURS, n)).fit(codes_train, y_l)
        found["CVAE + kNN"] = float((knn.predict(codes_test) != y_test).mean())
        clusters = kmeans_labels(codes_test, n_clusters=10, runs=1, seed=seed)[0]
        found["CVAE + k-means"] = 1.0 - hungarian_accuracy(y_test, clusters)
    curve = [{k: r[k] for k in ("epoch", "test_error", "validation_error") if k in r}
             for r in rows if r.get("test_error") is not None]  # fmt: skip
    return found, {"curve": curve, "best_epoch": chosen["epoch"]}


def chosen_epoch(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The evaluated epoch whose validation error is lowest (the first of ties) with its test
    error; without a validation split, the last evaluated epoch."""
    evaluated = [r for r in rows if r.get("test_error") is not None]
    if not evaluated:
        raise VaelabError("M2's metrics log holds no evaluated epoch; set train.eval_every")
    if any("validation_error" in r for r in evaluated):
        best = min((r for r in evaluated if "validation_error" in r),
                   key=lambda r: r["validation_error"])  # fmt: skip
    else:
        best = evaluated[-1]
    return {"epoch": best["epoch"], "test_error": best["test_error"]}


def error_of(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    """The share of images x whose label y q(y|x)'s most probable digit misses."""
    guess = torch.cat([model.classify(x[i : i + 2000]).argmax(-1) for i in range(0, len(x), 2000)])
    return float((guess.numpy() != y).mean())


def _summaries(by_n: Mapping[int, Mapping[int, float]]) -> dict[str, Any]:
    found = {}
    for n, by_seed in by_n.items():
        values = np.array(list(by_seed.values()))
        sd = float(values.std(ddof=1)) if len(values) > 1 else None
        found[str(n)] = {
            "mean": float(values.mean()),
            "sd": sd,
            "per_seed": {str(s): v for s, v in by_seed.items()},
        }
    return found


def _print_table(results: Mapping[str, Any], console: Console) -> None:
    counts = results["label_counts"]
    console.print("test error (%), mean ± sd over seeds, on all test images")
    header = f"{'method':<16}" + "".join(f"{n:>16}" for n in counts)
    console.print(header, markup=False, highlight=False)
    for method, by_n in results["errors"].items():
        cells = []
        for n in counts:
            s = by_n[str(n)]
            sd = "" if s["sd"] is None or math.isnan(s["sd"]) else f" ± {100 * s['sd']:.2f}"
            cells.append(f"{100 * s['mean']:.2f}{sd}")
        console.print(f"{method:<16}" + "".join(f"{c:>16}" for c in cells), markup=False)
    paper = results["paper_m2_percent"]
    line = "".join(f"{paper.get(str(n), '-')!s:>16}" for n in counts)
    console.print(f"{'paper M2':<16}" + line, markup=False, highlight=False)
