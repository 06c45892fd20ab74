"""The claims judged again at milestone epochs: do the verdicts settle with training?

Every run keeps its weights at epochs 1, 2, 4, 8, ... and at its last epoch
(`checkpoint.load_milestones`). For each milestone epoch that every run of the study reached,
the experiments' numbers are computed again from those weights in every seed, by the same
procedure as at the last epoch (the same k-means runs, walks and resamples), only without
figures and without the importance-weighted bound, which no claim reads; and the claims are
judged on them by the same rules. Nothing is trained again, and each (epoch, seed) is cached
under the hashes of the weights it read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vaelab.claims.maps import append_column, new_map
from vaelab.claims.verdicts import judge_claims
from vaelab.core import fileio
from vaelab.core.config import ExperimentConfig, to_dict
from vaelab.core.folders import RunFolder
from vaelab.core.util import code_digest, json_digest
from vaelab.experiments.common import Models
from vaelab.study.grid import RunDirs
from vaelab.training import checkpoint

MILESTONE_CACHE = "milestones.json"
NumbersOf = Callable[[Models, ExperimentConfig], dict[str, Any]]  # models -> experiment numbers


def milestone_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The experiments' settings at a milestone: the same, less the IWAE bound (no claim
    reads it, and it costs more than everything else together)."""
    return dataclasses.replace(cfg, iwae_samples=0)


def recorded_epochs(run_dir: Path) -> dict[int, str]:
    """{epoch: sha256 of the weights} of every milestone `run_dir` holds (unchecked here)."""
    found = {}
    for path in RunFolder(run_dir).milestone_records():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found[int(record["epoch"])] = str(record["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record: that epoch is simply not a shared milestone
    return found


def shared_epochs(runs_by_seed: Mapping[int, RunDirs]) -> list[int]:
    """The milestone epochs that every run of every seed reached, oldest first."""
    shared: set[int] | None = None
    for runs in runs_by_seed.values():
        for run_dir in runs.values():
            epochs = set(recorded_epochs(run_dir))
            shared = epochs if shared is None else shared & epochs
    return sorted(shared or ())


def _load_at(runs: RunDirs, epoch: int) -> Models:
    models: Models = {}
    for key, run_dir in runs.items():
        models[key] = checkpoint.load_milestones(run_dir, "cpu", epochs=[epoch])[epoch]
    return models


def claims_over_training(
    runs_by_seed: Mapping[int, RunDirs],
    cfg: ExperimentConfig,
    numbers_of: NumbersOf,
    out: Path,
    key: str,
    log: Callable[[str], None] = lambda line: None,
    before: int | None = None,
) -> dict[str, Any]:
    """The claims x epochs map (`vaelab.claims.maps`): each claim's reading and each
    comparison's effect and interval at every shared milestone epoch.

    `numbers_of(models, cfg)` computes one seed's experiment numbers; `key` names everything
    else they depend on (data, judge, settings); only epochs below `before` are judged (the
    study judges its final models itself). Returns JSON-ready data for results.json.
    """
    seeds = list(runs_by_seed)
    epochs = [e for e in shared_epochs(runs_by_seed) if before is None or e < before]
    at_milestones = milestone_config(cfg)
    cache_path = Path(out) / MILESTONE_CACHE
    cache = _read_cache(cache_path)
    found = new_map()
    computed = 0
    for epoch in epochs:
        per_seed = []
        for seed in seeds:
            runs = runs_by_seed[seed]
            entry = _entry_key(key, at_milestones, epoch, runs)
            if entry not in cache:
                log(f"claims at epoch {epoch}, seed {seed}: computing")
                cache[entry] = numbers_of(_load_at(runs, epoch), at_milestones)
                fileio.write_json(cache_path, cache)
                computed += 1
            per_seed.append(cache[entry])
        append_column(found, [c.to_dict() for c in judge_claims(per_seed, seeds)])
    return found | {
        "epochs": epochs,
        "seeds": seeds,
        "kmeans_runs": at_milestones.kmeans_runs,
        "computed": computed,  # (epoch, seed) pairs computed now rather than read from the cache
    }


def _entry_key(key: str, cfg: ExperimentConfig, epoch: int, runs: RunDirs) -> str:
    weights = sorted(
        (f"{kind}-z{z}", recorded_epochs(run_dir).get(epoch)) for (kind, z), run_dir in runs.items()
    )
    blob = {"key": key, "cfg": to_dict(cfg), "epoch": epoch, "weights": weights}
    return json_digest(blob | {"code": code_digest(__name__, "vaelab.study.per_seed")})


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}
