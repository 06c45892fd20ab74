"""Coverage of the claims' intervals in a simulation of the study's design: the table in
docs/statistics.md.

    PYTHONPATH=src .venv/bin/python benchmarks/coverage.py                # 1,000 studies a cell
    PYTHONPATH=src .venv/bin/python benchmarks/coverage.py --reps 200 --images 200   # smoke run

Each cell simulates `--reps` studies of S seeds whose per-image effects are a seed effect
(sd = ratio x one seed's image standard error), image noise shared by every seed and image
noise of each seed's own (`vaelab.evaluation.coverage`), with true effect 0, measured on the
study's own test-image resamples of `--images` images (their number matters only through the
precision of the resample variance, which the interval counts). It reports the share of
intervals that cover 0, the lowest over the shares of shared noise (0, 1/2, 1), for:

- random effects: the study's interval (`vaelab.evaluation.inference`);
- two-way bootstrap: percentile interval of 4,000 draws of S seeds with replacement and one
  shared test-image resample (the study's method before the random-effects interval);
- t(S-1) on all: Student's t with S - 1 df on the seed variance / S plus the image variance;
- Welch: the same with Welch-Satterthwaite degrees of freedom;
- shared part by covariance: random effects with the image part estimated without the seed's
  own image noise (the mean covariance of different seeds' resamples);

and how wide the random-effects interval is beside t(S-1) on all (the median ratio of their
half-widths, with half the image noise shared).

The last three are the candidates the chosen interval was compared with. Nothing is timed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from vaelab.evaluation.coverage import Design, covered, simulate
from vaelab.evaluation.inference import ALPHA, half_width, image_df, t_quantile, variance_parts

SEEDS = (2, 3, 5, 10)
RATIOS = (0.0, 1.0, 2.0, 4.0, 10.0, 100.0)
SHARED = (0.0, 0.5, 1.0)
LEVELS = (0.95, 1 - ALPHA / 6, 1 - ALPHA / 18)  # 95%, and a claim of 6 and of 18 comparisons
BOOTSTRAP_DRAWS = 4000

Method = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # -> (levels,) coverages


def random_effects(values: np.ndarray, boots: np.ndarray, images: int) -> np.ndarray:
    return np.array([covered(values, boots, level, images).mean() for level in LEVELS])


def two_way_bootstrap(values: np.ndarray, boots: np.ndarray, images: int) -> np.ndarray:
    """Coverage of the percentile interval of seeds x one shared resample, per level."""
    reps, seeds, draws = boots.shape
    rng = np.random.default_rng([20180106, seeds])
    picked = rng.integers(0, seeds, size=(BOOTSTRAP_DRAWS, seeds))
    column = rng.integers(0, draws, size=(BOOTSTRAP_DRAWS, 1))
    tails = [100 * (1 - level) / 2 for level in LEVELS]
    found = []
    for start in range(0, reps, 100):
        chunk = boots[start : start + 100][:, picked, column].mean(axis=-1)  # (r, D)
        ends = np.percentile(chunk, [*tails, *(100 - t for t in tails)], axis=1)  # (2L, r)
        low, high = ends[: len(LEVELS)], ends[len(LEVELS) :]
        found.append((low <= 0) & (high >= 0))
    return np.concatenate(found, axis=1).mean(axis=1)


def t_on_all(values: np.ndarray, boots: np.ndarray, images: int) -> np.ndarray:
    seeds = values.shape[-1]
    seed_var, image_var = variance_parts(values, boots)
    spread = np.sqrt(seed_var / seeds + image_var)
    mean = np.abs(values.mean(axis=-1))
    return np.array([(mean <= t_quantile(lv, seeds - 1) * spread).mean() for lv in LEVELS])


def welch(values: np.ndarray, boots: np.ndarray, images: int) -> np.ndarray:
    seeds, draws = boots.shape[-2:]
    seed_var, image_var = variance_parts(values, boots)
    a, b = seed_var / seeds, image_var
    df = (a + b) ** 2 / (a**2 / (seeds - 1) + b**2 / image_df(draws, images) + 1e-300)
    mean = np.abs(values.mean(axis=-1))
    found = [(mean <= stats.t.ppf(1 - (1 - lv) / 2, df) * np.sqrt(a + b)).mean() for lv in LEVELS]
    return np.array(found)


def unbiased(values: np.ndarray, boots: np.ndarray, images: int) -> np.ndarray:
    """Random effects with the seed's own image noise counted once: the shared part estimated
    as the mean covariance of different seeds' resamples (at least 0)."""
    seeds, draws = boots.shape[-2:]
    seed_var, image_var = variance_parts(values, boots)
    own = boots.var(axis=-1, ddof=1).sum(axis=-1)  # sum over seeds of each seed's variance
    shared = np.maximum(0.0, (seeds * seeds * image_var - own) / (seeds * (seeds - 1)))
    mean = np.abs(values.mean(axis=-1))
    df = image_df(draws, images)
    halves = [half_width(seed_var, shared, seeds, df, lv) for lv in LEVELS]
    return np.array([(mean <= half).mean() for half in halves])


METHODS: dict[str, Method] = {
    "random effects": random_effects,
    "two-way bootstrap": two_way_bootstrap,
    "t(S-1) on all": t_on_all,
    "Welch": welch,
    "shared part by covariance": unbiased,
}


def width_ratio(values: np.ndarray, boots: np.ndarray, level: float, images: int) -> float:
    """Median half-width of the random-effects interval over that of t(S-1) on all."""
    seeds, draws = boots.shape[-2:]
    seed_var, image_var = variance_parts(values, boots)
    ours = half_width(seed_var, image_var, seeds, image_df(draws, images), level)
    theirs = t_quantile(level, seeds - 1) * np.sqrt(seed_var / seeds + image_var)
    return float(np.median(ours / theirs))


def cell(seeds: int, ratio: float, reps: int, images: int) -> dict[str, Any]:
    """{"coverage": {method: [lowest coverage over the shares of shared noise, per level]},
    "width": the width ratio at half the image noise shared, per level}."""
    worst = {name: [1.0] * len(LEVELS) for name in METHODS}
    width = []
    for shared in SHARED:
        rng = np.random.default_rng([24, seeds, int(10 * ratio), int(10 * shared)])
        values, boots = simulate(Design(seeds, ratio, shared, images), reps, rng)
        for name, method in METHODS.items():
            found = method(values, boots, images)
            worst[name] = [min(w, float(f)) for w, f in zip(worst[name], found, strict=True)]
        if shared == 0.5:
            width = [width_ratio(values, boots, level, images) for level in LEVELS]
    return {"coverage": worst, "width": width}


def table(rows: list[dict]) -> str:
    names = ("random effects", "two-way bootstrap")
    levels = " / ".join(f"{100 * level:.2f}%" for level in LEVELS)
    head = f"| S | seed sd / image SE | {' | '.join(f'{n} ({levels})' for n in names)} |"
    lines = [head + " width / t(S-1) on all |", "|---|---|" + "---|" * (len(names) + 1)]
    for row in rows:
        cells = [" / ".join(f"{c:.3f}" for c in row["coverage"][n]) for n in names]
        cells.append(" / ".join(f"{w:.2f}" for w in row["width"]))
        lines.append(f"| {row['seeds']} | {row['ratio']:g} | {' | '.join(cells)} |")
    return "\n".join(lines)


def candidates(rows: list[dict]) -> str:
    """The lowest coverage of each method over every ratio, per S and level."""
    lines = ["| S | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for seeds in SEEDS:
        found = [r for r in rows if r["seeds"] == seeds]
        cells = []
        for name in METHODS:
            lows = [min(r["coverage"][name][i] for r in found) for i in range(len(LEVELS))]
            cells.append(" / ".join(f"{c:.3f}" for c in lows))
        lines.append(f"| {seeds} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000, help="studies simulated per cell")
    parser.add_argument("--images", type=int, default=500, help="test images per seed")
    parser.add_argument("--json", help="also write every cell here")
    args = parser.parse_args()
    rows = []
    for seeds in SEEDS:
        for ratio in RATIOS:
            rows.append(
                {"seeds": seeds, "ratio": ratio} | cell(seeds, ratio, args.reps, args.images)
            )
            print(f"S = {seeds}, ratio {ratio:g}: done", flush=True)
    mc = np.sqrt(LEVELS[0] * (1 - LEVELS[0]) / args.reps)
    print(f"\n{args.reps} studies per cell, {args.images} images per seed; lowest coverage over")
    print(f"shared image noise 0, 1/2, 1; Monte Carlo sd at 95%: {mc:.4f}\n")
    print(table(rows))
    print("\nLowest coverage over every ratio, per method (levels as above):\n")
    print(candidates(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"reps": args.reps, "images": args.images, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
