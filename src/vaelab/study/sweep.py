"""The study at every (C, k) point: the claims judged again, and the rate-distortion plane.

The headline point (the article's C = 0.1, k = 5 when the sweep holds it) gives the report its
figures and verdicts. Every other point runs the same experiments on its own VAEs and CVAEs
(the AE, which has neither C nor k, is shared), for their numbers only, and its claims are
judged by the same rules: the claims x settings map shows which verdicts move with C and k.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vaelab.claims.maps import ClaimsMap
from vaelab.claims.verdicts import judge_claims
from vaelab.core.config import StudyConfig
from vaelab.experiments import rate_distortion
from vaelab.experiments.common import Models
from vaelab.study.context import StudyContext
from vaelab.study.grid import Point, RunDirs, data_key, point_label
from vaelab.study.per_seed import experiment_key, run_seed


def claims_over_settings(
    ctx: StudyContext,
    models: Mapping[Point, Mapping[int, Models]],
    folders: Mapping[Point, Mapping[int, RunDirs]],
    headline_numbers: Mapping[int, dict[str, Any]],
    results: dict[str, Any],
) -> dict[str, Any]:
    """{"map": the claims x settings map, "rows": the rate-distortion rows, "what": a line}."""
    cfg = ctx.cfg
    headline = cfg.headline()
    numbers: dict[Point, Mapping[int, dict[str, Any]]] = {}
    computed = 0
    for point in cfg.points():
        if point == headline:
            numbers[point] = headline_numbers
            continue
        by_seed = {}
        for seed in cfg.seeds:
            names = [d.name for d in folders[point][seed].values()]
            key = experiment_key(cfg.at(point), names, ctx.judge_name, data_key(cfg))
            steps: dict[str, Any] = {}
            found = run_seed(
                ctx,
                dict(models[point][seed]),
                seed,
                key,
                figures=False,
                timings=steps,
                point=point_label(point),
            )
            computed += sum(v["what"] == "computed" for v in steps.values())
            ctx.timings.update(steps)
            by_seed[seed] = {r.name: r.numbers for r in found}
        numbers[point] = by_seed
    ordered = {p: numbers[p] for p in cfg.points()}
    return {
        "map": settings_map(cfg, ordered, results),
        "rows": rate_distortion.rows(ordered),
        "what": f"{len(ordered) - 1} other point(s), {computed} experiment(s) computed",
    }


def settings_map(
    cfg: StudyConfig, numbers: Mapping[Point, Mapping[int, dict[str, Any]]], results: dict[str, Any]
) -> dict[str, Any]:
    """The claims x settings map (`vaelab.claims.maps`) with {points, headline, reasons}: the
    headline's column is the study's own verdicts, the only column that is a verdict; every
    other point is judged alike, as a description."""
    headline = cfg.headline()
    points = [{"kl_weight": c, "n_samples": k} for c, k in numbers]
    judged = list(numbers).index(headline)
    found = ClaimsMap({"points": points, "headline": judged}, reasons={})
    for point, by_seed in numbers.items():
        if point == headline:
            claims = results["claims"]
        else:
            seeds = list(by_seed)
            claims = [c.to_dict() for c in judge_claims([by_seed[s] for s in seeds], seeds)]
        found.append(claims)
    at = f"the column of C = {headline[0]:g}, k = {headline[1]}"
    return found.to_dict(judged, cfg.seeds, "settings", at)
