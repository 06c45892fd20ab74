"""The study's experiments, once per seed, each reused while nothing it depends on changed.

Every experiment runs on one seed's models at a time (`experiments/` knows nothing of seeds).
The first seed's figures go into the report; the other seeds are run for their numbers alone,
drawing nothing. The clustering box plots are the exception:
they pool the k-means runs of every seed, so they are drawn here, after all seeds.

The cache (experiments.json) keeps the latest result of each (experiment, seed), sealed with
the sha256 of the entry and of each figure it names, so a damaged entry or figure is computed
again rather than used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaelab.core import fileio
from vaelab.core.config import ExperimentConfig, StudyConfig, to_dict
from vaelab.core.folders import StudyFolder
from vaelab.core.util import code_digest, json_digest
from vaelab.experiments import clustering, interpolation, latent, reconstruction, style
from vaelab.experiments.common import Experiment, ExperimentResult, Figure, Models, StudyData
from vaelab.models.classifier import DigitClassifier
from vaelab.study.context import StudyContext

EXPERIMENTS = ("reconstruction", "interpolation", "latent", "clustering", "style")
STEPS: dict[str, Experiment] = {
    "reconstruction": reconstruction.run,
    "interpolation": interpolation.run,
    "latent": latent.run,
    "clustering": clustering.run,
    "style": style.run,
}
POOLED = {"clustering"}  # figures drawn over every seed at once (`pooled_clustering_figures`)


CLAIMED = EXPERIMENTS[:4]  # the experiments whose numbers the claims judge


def experiment_numbers(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    judge: DigitClassifier,
    skip: Mapping[str, str] | None = None,
    names: tuple[str, ...] = CLAIMED,
) -> dict[str, Any]:
    """The numbers the claims read of `names` on one seed's models: no figures, no measure
    only the tables show (each experiment's `out_dir=None`)."""
    found = {}
    for name in names:
        if name == "latent" and name in (skip or {}):  # too few test images per digit
            found[name] = {}
            continue
        found[name] = STEPS[name](models, data, cfg, None, judge).numbers
    return found


def run_seed(
    ctx: StudyContext,
    models: Models,
    seed: int,
    key: str,
    *,
    figures: bool,
    timings: dict[str, Any] | None = None,
    point: str = "",
) -> list[ExperimentResult]:
    """Every experiment on the models of `seed`, from the cache where its key still matches.

    `figures=False` (every seed but the first) draws no figure;
    `point` names a (C, k) point other than the headline's, cached apart; each experiment's
    time goes into `timings` (the study's by default).
    """
    out, console = ctx.out, ctx.console
    timings = ctx.timings if timings is None else timings
    cache_path = StudyFolder(out).experiment_cache
    cache = fileio.read_json_object(cache_path)
    results = []
    for i, name in enumerate(EXPERIMENTS, start=1):
        entry_name = f"{name}@seed{seed}" + (f"@{point}" if point else "")
        label = f"seed {seed}{', ' + point if point else ''}, experiment {i}/{len(EXPERIMENTS)}"
        t = time.perf_counter()
        cached = cache.get(entry_name)
        if cached and cached.get("key") == key and _intact(out, cached):
            result = ExperimentResult(
                name, cached["numbers"], [Figure(**f) for f in cached["figures"]], cached["seconds"]
            )
            console.print(f"{label}: {name}: reusing the last results")
            note = f"reused (computed before in {result.seconds:.1f} s)"
        else:
            result = _compute(name, models, ctx, figures)
            console.print(f"{label}: {name} done in {result.seconds:.1f} s")
            cache[entry_name] = _sealed(out, {"key": key, **result_dict(result)})
            fileio.write_json(cache_path, cache)
            note = "computed"
        timings[f"experiment: {name}, seed {seed}" + (f", {point}" if point else "")] = {
            "seconds": time.perf_counter() - t,
            "what": note,
        }
        results.append(result)
    return results


def _compute(name: str, models: Models, ctx: StudyContext, figures: bool) -> ExperimentResult:
    started = time.perf_counter()
    if name == "latent" and name in ctx.skipped:  # too few test images per digit
        result = ExperimentResult(name, {})
    else:  # every number; figures for the first seed (the clustering's pooled: drawn later)
        drawn = figures and name not in POOLED
        e = ctx.cfg.experiments
        result = STEPS[name](models, ctx.data, e, ctx.out, ctx.judge, figures=drawn)
    result.seconds = time.perf_counter() - started
    return result


def pooled_clustering_figures(
    per_seed: Mapping[int, dict[str, Any]], cfg: ExperimentConfig, out: Path
) -> list[Figure]:
    """The clustering box plots over every seed's k-means runs (drawn each time: cheap)."""
    numbers = {seed: n.get("clustering") or {} for seed, n in per_seed.items()}
    return clustering.pooled_box_plots(numbers, cfg, out)


def experiment_key(cfg: StudyConfig, runs: list[str], judge_folder: str, data_key: Any) -> str:
    """Everything one seed's experiments depend on: settings, data, models, the judge."""
    blob = {
        "experiments": to_dict(cfg.experiments),
        "data": data_key,
        "runs": sorted(runs),
        "judge": judge_folder,
        "code": code_digest(__name__),  # any change to the code that computes the numbers
    }
    return json_digest(blob)


def result_dict(result: ExperimentResult) -> dict[str, Any]:
    return {
        "numbers": result.numbers,
        "seconds": result.seconds,
        "figures": [dataclasses.asdict(f) for f in result.figures],
    }


def _sealed(out: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """A cache entry with the sha256 of its figures and of itself, so damage is seen."""
    entry = {
        **entry,
        "figure_sha256": {f["path"]: _file_sha256(out / f["path"]) for f in entry["figures"]},
    }
    return {**entry, "sha256": _entry_sha256(entry)}


def _intact(out: Path, entry: dict[str, Any]) -> bool:
    """True if the entry and every figure it names are as they were written."""
    try:
        if entry["sha256"] != _entry_sha256({k: v for k, v in entry.items() if k != "sha256"}):
            return False
        return all(
            _file_sha256(out / path) == digest for path, digest in entry["figure_sha256"].items()
        ) and {f["path"] for f in entry["figures"]} == set(entry["figure_sha256"])
    except (KeyError, TypeError, AttributeError, OSError):
        return False


def _entry_sha256(entry: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
