"""The claims judged again at milestone steps: do the verdicts settle with training?

Every run keeps its weights at steps 250, 500, 1000, 2000, ... and at its last step
(`checkpoint.load_milestones`; a run from before steps, at epochs 1, 2, 4, ...). For each
milestone step that every run of the study reached, the experiments' numbers are computed
again from those weights in every seed, by the same procedure as at the last step (the same
k-means runs, walks and resamples), only without figures and without the importance-weighted
bound, which no claim reads; and the claims are judged on them by the same rules. Nothing is
trained again, and each (step, seed) is cached under the hashes of the weights it read.
The map's columns are labelled in steps, with the epochs they make where those are whole,
and the article's point (1000 steps) is marked where the map passes it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vaelab.claims.maps import ClaimsMap
from vaelab.claims.verdicts import judge_claims
from vaelab.core import fileio
from vaelab.core.config import ARTICLE_STEPS, ExperimentConfig, to_dict
from vaelab.core.folders import RunFolder, StudyFolder
from vaelab.core.util import code_digest, json_digest
from vaelab.experiments.common import Models
from vaelab.study.grid import RunDirs
from vaelab.training import checkpoint

NumbersOf = Callable[[Models, ExperimentConfig], dict[str, Any]]  # models -> experiment numbers


def milestone_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The experiments' settings at a milestone: the same, less the IWAE bound (no claim
    reads it, and it costs more than everything else together)."""
    return dataclasses.replace(cfg, iwae_samples=0)


def recorded_steps(run_dir: Path, steps_per_epoch: int) -> dict[int, str]:
    """{step: sha256 of the weights} of every milestone `run_dir` holds (unchecked here)."""
    found = {}
    for path in RunFolder(run_dir).milestone_records():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found[checkpoint.record_step(record, steps_per_epoch)] = str(record["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record: that step is simply not a shared milestone
    return found


def shared_steps(runs_by_seed: Mapping[int, RunDirs], steps_per_epoch: int) -> list[int]:
    """The milestone steps that every run of every seed reached, oldest first."""
    shared: set[int] | None = None
    for runs in runs_by_seed.values():
        for run_dir in runs.values():
            steps = set(recorded_steps(run_dir, steps_per_epoch))
            shared = steps if shared is None else shared & steps
    return sorted(shared or ())


def column_label(step: int, steps_per_epoch: int) -> str:
    """ "250 steps", or "1200 steps (2 epochs)" where the steps are whole epochs."""
    whole, rest = divmod(step, steps_per_epoch)
    epochs = f" ({whole} epoch{'s' * (whole != 1)})" if rest == 0 else ""
    return f"{step} steps{epochs}"


def map_columns(steps: list[int], steps_per_epoch: int) -> dict[str, Any]:
    """The map's columns: their steps, labels, epochs and which one is the article's point."""
    return {
        "steps": steps,
        "labels": [column_label(s, steps_per_epoch) for s in steps],
        "epochs": [s / steps_per_epoch for s in steps],
        "steps_per_epoch": steps_per_epoch,
        "article_step": ARTICLE_STEPS,
        "article_column": steps.index(ARTICLE_STEPS) if ARTICLE_STEPS in steps else None,
    }


def _load_at(runs: RunDirs, step: int, steps_per_epoch: int) -> Models:
    models: Models = {}
    for key, run_dir in runs.items():
        found = checkpoint.load_milestones(run_dir, "cpu", [step], steps_per_epoch=steps_per_epoch)
        models[key] = found[step]
    return models


def claims_over_training(
    runs_by_seed: Mapping[int, RunDirs],
    cfg: ExperimentConfig,
    numbers_of: NumbersOf,
    out: Path,
    key: str,
    *,
    steps_per_epoch: int,
    log: Callable[[str], None] = lambda line: None,
    before: int | None = None,
) -> tuple[ClaimsMap, int]:
    """The claims x training map (`vaelab.claims.maps`): each claim's reading and each
    comparison's effect and interval at every shared milestone step.

    `numbers_of(models, cfg)` computes one seed's experiment numbers; `key` names everything
    else they depend on (data, judge, settings); only steps below `before` are judged (the
    study judges its final models itself). Returns the map, its columns' steps and labels
    (`map_columns`) and settings, and how many (step, seed) pairs were computed now rather than
    read from the cache."""
    seeds = list(runs_by_seed)
    per = steps_per_epoch
    steps = [s for s in shared_steps(runs_by_seed, per) if before is None or s < before]
    at_milestones = milestone_config(cfg)
    cache_path = StudyFolder(out).milestone_cache
    cache = fileio.read_json_object(cache_path)
    found = ClaimsMap()
    computed = 0
    for step in steps:
        per_seed = []
        for seed in seeds:
            runs = runs_by_seed[seed]
            entry = _entry_key(key, at_milestones, step, runs, per)
            if entry not in cache:
                log(f"claims at step {step}, seed {seed}: computing")
                cache[entry] = numbers_of(_load_at(runs, step, per), at_milestones)
                fileio.write_json(cache_path, cache)
                computed += 1
            per_seed.append(cache[entry])
        found.append([c.to_dict() for c in judge_claims(per_seed, seeds)])
    found.columns = map_columns(steps, per) | {
        "seeds": seeds,
        "kmeans_runs": at_milestones.kmeans_runs,
        "kmeans_n_init": at_milestones.kmeans_n_init,
    }
    return found, computed


def _entry_key(key: str, cfg: ExperimentConfig, step: int, runs: RunDirs, per: int) -> str:
    weights = sorted(
        (f"{kind}-z{z}", recorded_steps(run_dir, per).get(step))
        for (kind, z), run_dir in runs.items()
    )
    blob = {"key": key, "cfg": to_dict(cfg), "step": step, "weights": weights}
    return json_digest(blob | {"code": code_digest(__name__, "vaelab.study.per_seed")})
