"""A simulation of the study's design, to check that its intervals hold their level.

Each simulated comparison has true effect 0. Seed s measures it on the same `images` test
images; image i's effect in seed s is

    the seed's training-run effect u_s  +  the image's own noise a_i (the same in every seed)
                                        +  seed x image noise b_si,

with u_s ~ N(0, (ratio x SE)^2), and a and b Gaussian, `shared` of the image variance in a,
scaled so that one seed's mean over the images has standard error SE = 1. Each seed's effect
is then measured as the study measures it: the mean over the images and its means over the
study's own test-image resamples (`evidence.resample_counts`, the same for every seed), and
pooled by the study's own interval (`inference.variance_parts`, `inference.half_width`).
`tests/test_coverage.py` asserts the coverage; `benchmarks/coverage.py` prints the table in
docs/statistics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from vaelab.evaluation.evidence import DRAWS, resample_counts
from vaelab.evaluation.inference import half_width, image_df, variance_parts

CHUNK = 200_000  # simulated per-image values held at once (reps x seeds x images)


@dataclass(frozen=True)
class Design:
    seeds: int  # S
    ratio: float  # the sd of the seed effects over one seed's image standard error
    shared: float  # the share of the image noise every seed shares (0 to 1)
    images: int = 2000  # test images per seed


def simulate(
    design: Design, reps: int, rng: np.random.Generator, draws: int = DRAWS
) -> tuple[np.ndarray, np.ndarray]:
    """(values (reps, S), boots (reps, S, draws)): each simulated seed's effect and its
    values on the test-image resamples, for `reps` independent studies of `design`."""
    n, s = design.images, design.seeds
    weights = resample_counts(n, draws).astype(np.float64).T / n  # (n, draws)
    sd = np.sqrt(n)  # per image, so that a mean over n images has standard error 1
    values, boots = [], []
    step = max(1, CHUNK // (s * n))
    for start in range(0, reps, step):
        r = min(step, reps - start)
        shared = rng.normal(0.0, sd * np.sqrt(design.shared), (r, 1, n))
        own = rng.normal(0.0, sd * np.sqrt(1.0 - design.shared), (r, s, n))
        seed = rng.normal(0.0, design.ratio, (r, s, 1))
        effects = seed + shared + own  # (r, S, n)
        values.append(effects.mean(axis=-1))
        boots.append(effects @ weights)  # (r, S, draws)
    return np.concatenate(values), np.concatenate(boots)


def covered(values: np.ndarray, boots: np.ndarray, level: float, images: int) -> np.ndarray:
    """(reps,) booleans: does each study's random-effects interval at `level` cover 0?"""
    seeds, draws = boots.shape[-2:]
    seed_var, image_var = variance_parts(values, boots)
    half = half_width(seed_var, image_var, seeds, image_df(draws, images), level)
    return np.abs(values.mean(axis=-1)) <= half


def monte_carlo_floor(level: float, reps: int, tail: float = 1e-4) -> float:
    """The lowest simulated coverage consistent with a true coverage of `level`: the `tail`
    quantile of the share of `reps` intervals that cover (exact, binomial)."""
    return float(stats.binom.ppf(tail, reps, level)) / reps
