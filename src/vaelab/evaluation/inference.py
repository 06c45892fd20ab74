"""What the seeds and the test images say about one comparison: its interval and its outcome.

Every seed's effect is an estimate: a value on the test images and its value on each of the
same `DRAWS` test-image resamples (`vaelab.evaluation.evidence`). The design is crossed: every
seed is measured on the same images. A seed's effect is then the true effect, plus that seed's
training-run effect, plus image noise, part of which (the images' own difficulty) every seed
shares and part of which is the seed's own. The mean over S seeds varies by

    (seed spread + the seed's own image noise) / S  +  the image noise every seed shares.

`pool` estimates the first part by the sample variance of the S per-seed effects (S - 1
degrees of freedom) and the image part by the variance, over the resamples, of the
seed-averaged effect (`image_df` degrees of freedom, from the B resamples and the n images;
it also holds the seed's own image noise once more, which only widens the interval), and
adds the two after scaling each by its own t quantile:

    half-width = sqrt(t(S-1)^2 * s^2 / S  +  t(df_images)^2 * v_images).

Its coverage is at least the level asked for at every ratio of the two parts: the coverage is
a concave function of the seed part's share of the variance, equal to the level at both ends
(docs/statistics.md), which a simulation of the study's design confirms
(`benchmarks/coverage.py`, `tests/test_coverage.py`). One seed leaves the seed spread
unknown: no interval then holds its level (`MIN_SEEDS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from vaelab.evaluation.evidence import Estimate

ALPHA = 0.05  # 1 - the joint coverage of one claim's intervals
MIN_SEEDS = 2  # seeds needed to estimate the spread between training runs at all
MAX_SEEDS_PLANNED = 1000  # `seeds_to_decide` looks no further

SUPPORTS, CONTRADICTS = "supports", "contradicts"
EQUIVALENT, INCONCLUSIVE = "equivalent", "inconclusive"
OUTCOMES = (SUPPORTS, CONTRADICTS, EQUIVALENT, INCONCLUSIVE)


def t_quantile(level: float, df: float) -> float:
    """The two-sided `level` quantile of Student's t with `df` degrees of freedom."""
    return float(stats.t.ppf(1 - (1 - level) / 2, df))


@dataclass(frozen=True)
class Pooled:
    value: float  # the mean over seeds of each seed's effect
    low: float  # the interval at the level asked for
    high: float
    seeds: int  # how many seeds measured it
    seed_sd: float | None  # sample sd (ddof=1) of the per-seed effects; None with one seed
    image_se: float  # sd of the seed-averaged effect over the test-image resamples
    image_df: float  # degrees of freedom of the image part (`image_df`)
    holds_level: bool  # False with fewer than MIN_SEEDS seeds: test images' noise only

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def variance_parts(values: np.ndarray, boots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(seed variance, image variance) of comparisons given as per-seed values (..., S) and
    their resamples (..., S, B): the sample variance (ddof=1) of the S values (NaN for one
    seed), and the variance over the resamples of the seed-averaged effect."""
    seeds = values.shape[-1]
    image_var = boots.mean(axis=-2).var(axis=-1, ddof=1)
    seed_var = (
        values.var(axis=-1, ddof=1) if seeds >= MIN_SEEDS else np.full_like(image_var, np.nan)
    )
    return seed_var, image_var


def image_df(draws: int, items: int | None) -> float:
    """Degrees of freedom of a resample variance: 1/df = 1/(B - 1) + 1/(n - 1), the error of
    B resamples and that of n items' own variance (Satterthwaite); B - 1 when n is unknown."""
    if items is None or items < 2:
        return float(draws - 1)
    return 1 / (1 / (draws - 1) + 1 / (items - 1))


def half_width(
    seed_var: np.ndarray, image_var: np.ndarray, seeds: int, df_images: float, level: float
) -> np.ndarray:
    """sqrt(t(S-1)^2 * seed_var / S + t(df_images)^2 * image_var); the image part alone for
    fewer than MIN_SEEDS seeds (a description of the seed, not an interval that holds its
    level)."""
    image_part = t_quantile(level, df_images) ** 2 * image_var
    if seeds < MIN_SEEDS:
        return np.sqrt(image_part)
    return np.sqrt(t_quantile(level, seeds - 1) ** 2 * seed_var / seeds + image_part)


def pool(per_seed: Sequence[Estimate], level: float) -> Pooled:
    """The mean effect over seeds and its random-effects interval (see the module docstring).

    With fewer than `MIN_SEEDS` seeds the interval holds the test images' noise only and
    `holds_level` is False: it describes the seed, it does not cover the effect of training.
    """
    values = np.asarray([e["value"] for e in per_seed], dtype=np.float64)
    boots = np.asarray([e["boot"] for e in per_seed], dtype=np.float64)  # (S, B)
    s, b = boots.shape
    items = [e["items"] for e in per_seed if "items" in e]
    df = image_df(b, min(items) if items else None)
    seed_var, image_var = variance_parts(values, boots)
    half = float(half_width(seed_var, image_var, s, df, level))
    mean = float(values.mean())
    seed_sd = math.sqrt(float(seed_var)) if s >= MIN_SEEDS else None
    image_se = math.sqrt(float(image_var))
    return Pooled(mean, mean - half, mean + half, s, seed_sd, image_se, df, s >= MIN_SEEDS)


def seed_interval(one: Estimate, level: float) -> tuple[float, float]:
    """One seed's own interval: its value ± t(df) times the sd of its test-image resamples
    (`image_df`)."""
    boot = np.asarray(one["boot"], dtype=np.float64)
    half = t_quantile(level, image_df(boot.size, one.get("items"))) * float(boot.std(ddof=1))
    return one["value"] - half, one["value"] + half


def mean_interval(values: Sequence[float], level: float = 1 - ALPHA) -> list[float] | None:
    """Student's t interval at `level` for the mean of independent `values` (one per seed),
    from their sample sd (ddof=1) with n - 1 degrees of freedom; None with fewer than two
    values; a point where the values do not vary."""
    diffs = np.asarray(values, dtype=np.float64)
    if len(diffs) < MIN_SEEDS:
        return None
    sem = float(diffs.std(ddof=1)) / math.sqrt(len(diffs))
    if sem == 0:
        return [float(diffs.mean())] * 2
    low, high = stats.t.interval(level, len(diffs) - 1, loc=diffs.mean(), scale=sem)
    return [float(low), float(high)]


def decidable(seeds: int, level: float) -> float | None:
    """The smallest effect, in units of the seed spread (the sd of the per-seed effects), whose
    interval at `level` can leave zero when the seeds' spread dominates: t(S-1) / sqrt(S).
    None for fewer than MIN_SEEDS seeds, which can decide nothing."""
    if seeds < MIN_SEEDS:
        return None
    return t_quantile(level, seeds - 1) / math.sqrt(seeds)


def seeds_to_decide(pooled: Pooled, level: float, expect: int, margin: float) -> int | None:
    """How many seeds would, at the spread measured here, make this interval decide.

    For a predicted difference: leave zero (half-width < |effect|) or fit inside ±margin
    (half-width < margin - |effect|); for a value predicted near zero: fit inside the margin
    or lie wholly beyond it (half-width < ||effect| - margin|).

    A plan, not a promise: it takes the measured effect and seed spread as the truth and the
    image part as it is now. None: no number of seeds up to MAX_SEEDS_PLANNED would (the
    image noise alone is too large, or the effect sits on the margin), or it is not known
    (one seed)."""
    if pooled.seed_sd is None:
        return None
    size = abs(pooled.value)
    need = abs(size - margin) if expect == 0 else max(size, margin - size)
    image_part = (t_quantile(level, pooled.image_df) * pooled.image_se) ** 2
    for s in range(MIN_SEEDS, MAX_SEEDS_PLANNED + 1):
        half = math.sqrt(t_quantile(level, s - 1) ** 2 * pooled.seed_sd**2 / s + image_part)
        if half < need:
            return s
    return None


def outcome(low: float, high: float, expect: int, margin: float = 0.0) -> str:
    """Where the interval lies, read against what the article predicts.

    expect = ±1 (a difference of that sign): an interval inside (-margin, +margin) is
    *equivalent* (the predicted difference is absent, however consistent a lean); otherwise
    one on the predicted side of zero *supports* it, one on the other side *contradicts* it,
    and one that touches or straddles zero is *inconclusive*.
    expect = 0 (a value near zero): inside (-margin, +margin) *supports*, wholly beyond the
    margin *contradicts*, anything else is *inconclusive*.
    """
    inside = -margin < low and high < margin
    if expect == 0:
        if inside:
            return SUPPORTS
        return CONTRADICTS if (low >= margin or high <= -margin) else INCONCLUSIVE
    if inside:
        return EQUIVALENT
    if (low > 0 and expect > 0) or (high < 0 and expect < 0):
        return SUPPORTS
    if (high < 0 and expect > 0) or (low > 0 and expect < 0):
        return CONTRADICTS
    return INCONCLUSIVE


def sign_agreement(values: Sequence[float], expect: int) -> dict[str, Any] | None:
    """How many seeds' effects have the article's sign, of those that are not zero, and the
    exact one-sided sign-test p (binomial, p = 1/2) of that many or more: a description of
    the seeds, not an interval (S seeds cannot give p below 2^-S). None for a value
    predicted near zero, which has no sign to agree with."""
    if expect == 0:
        return None
    signs = np.sign(np.asarray(values, dtype=np.float64)) * expect
    agree, nonzero = int((signs > 0).sum()), int((signs != 0).sum())
    p = stats.binomtest(agree, nonzero, 0.5, alternative="greater").pvalue if nonzero else 1.0
    return {"agree": agree, "of": nonzero, "p": float(p)}
