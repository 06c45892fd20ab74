"""Statistics of the study: summaries over seeds for tables, and the evidence the claims weigh.

Tables show a number that differs between seeds as mean ± sd with n (`across_seeds`).

The claims weigh *estimates*: a measure of one seed's models on the test images, with its
value and `DRAWS` bootstrap replicates, each the same measure on a resample of the test
images (or of the walks' image pairs). The resamples depend only on how many images there
are and on a fixed seed, never on the run seed, so every model of every seed is measured on
the same resamples: the difference of two estimates' replicates is a paired bootstrap of
their difference, and the same resample serves every seed (the seeds share their test images,
so their test-set noise is shared too). `pool` then resamples the seeds as well (a two-way
bootstrap of seeds x test images) for the effect's interval. docs/statistics.md states the
method, its assumptions and what three seeds can show.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05  # 1 - the joint coverage of one claim's intervals
DRAWS = 200  # bootstrap replicates kept per estimate (per seed)
RESAMPLE_SEED = 20180106  # the article's date: the one seed of every test-image resample
POOL_DRAWS = 4000  # draws of the two-way bootstrap that pools the seeds
DIGITS = 6  # significant digits kept of each replicate in results.json

Estimate = dict[str, Any]  # {"value": float, "boot": [DRAWS floats]}


# --- summaries over seeds, for tables -------------------------------------------------------


def _finite(values: Sequence[float | None]) -> np.ndarray:
    """The finite numbers among `values` (None, NaN and infinities are left out)."""
    array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return array[np.isfinite(array)]


def summarize_seeds(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, sample sd (ddof=1), n, min and max of the finite values; None where undefined.

    Seeds that did not measure a number (None) are not counted in n, so a table can say
    "0.61 ± 0.02 (n = 2)" rather than hide that a seed is missing.
    """
    array = _finite(values)
    n = int(array.size)
    return {
        "mean": float(array.mean()) if n else None,
        "sd": float(array.std(ddof=1)) if n > 1 else None,
        "n": n,
        "min": float(array.min()) if n else None,
        "max": float(array.max()) if n else None,
    }


EVIDENCE = "evidence"  # the key under which an experiment keeps its estimates


def across_seeds(per_seed: Sequence[Any]) -> Any:
    """The same nested numbers of every seed -> one tree for tables: a number equal in every
    seed stays as it is (a setting, a count); one that differs becomes `summarize_seeds`'
    {mean, sd, n, min, max}. Lists and strings are the first seed's (figures show it).
    Estimates (under "evidence") are left out: the claims pool them, tables do not."""
    present = [t for t in per_seed if t is not None]
    if not present:
        return None
    if all(isinstance(t, dict) for t in present):
        keys = [k for k in dict.fromkeys(k for t in present for k in t) if k != EVIDENCE]
        return {k: across_seeds([t.get(k) for t in present]) for k in keys}
    numbers = all(isinstance(t, int | float) and not isinstance(t, bool) for t in present)
    if numbers and (len(present) < len(per_seed) or len(set(present)) > 1):
        return summarize_seeds(list(per_seed))
    return present[0]


def is_summary(value: Any) -> bool:
    """True for what `summarize_seeds` returns."""
    return isinstance(value, dict) and set(value) == {"mean", "sd", "n", "min", "max"}


def central(value: Any) -> Any:
    """A summary's mean, anything else as it is: for code that wants one number per cell."""
    return value["mean"] if is_summary(value) else value


# --- estimates: a measure and its test-image resamples ----------------------------------------


@functools.cache
def resamples(n: int, draws: int = DRAWS) -> np.ndarray:
    """(draws, n) indices into n items, drawn with replacement: the same for every caller.

    Read-only; seeded by `RESAMPLE_SEED` and n alone, so two measures over the same n items
    (the same test images, whatever the model or run seed) are resampled alike.
    """
    if n < 1:
        raise ValueError("a resample needs at least one item")
    index = np.random.default_rng([RESAMPLE_SEED, n]).integers(0, n, size=(draws, n))
    index.setflags(write=False)
    return index


@functools.cache
def resample_counts(n: int, draws: int = DRAWS) -> np.ndarray:
    """(draws, n) float32: how often each item occurs in each of `resamples(n)`."""
    index = resamples(n, draws)
    offset = np.arange(draws)[:, None] * n
    counts = np.bincount((index + offset).ravel(), minlength=draws * n).reshape(draws, n)
    counts = counts.astype(np.float32)
    counts.setflags(write=False)
    return counts


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.{DIGITS}g}") for v in np.asarray(values, dtype=np.float64)]


def estimate(value: float, boot: np.ndarray) -> Estimate:
    return {"value": float(value), "boot": _rounded(boot)}


def mean_estimate(values: Sequence[float] | np.ndarray, draws: int = DRAWS) -> Estimate:
    """The mean of per-item values (per image, per walk) and its resampled means."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or not array.size:
        raise ValueError("a mean estimate needs a non-empty 1-D array of values")
    boot = resample_counts(array.size, draws).astype(np.float64) @ array / array.size
    return estimate(float(array.mean()), boot)


def statistic_estimate(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, draws: int = DRAWS
) -> Estimate:
    """Any statistic of n items: `statistic(index)` takes (m, k) item indices (a batch of m
    resamples of k items each) and returns the m values; the first is the full sample."""
    full = statistic(np.arange(n)[None, :])
    return estimate(float(full[0]), statistic(np.asarray(resamples(n, draws))))


def is_estimate(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and "boot" in value


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b, replicate by replicate: paired, since both come from the same resamples."""
    boot = np.asarray(a["boot"]) - np.asarray(b["boot"])
    return {"value": a["value"] - b["value"], "boot": boot.tolist()}


# --- pooling the seeds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pooled:
    value: float  # the mean over seeds of each seed's value
    low: float  # the interval at the level asked for
    high: float
    seeds: int  # how many seeds measured it


def pool(per_seed: Sequence[Estimate], level: float, key: str = "") -> Pooled:
    """The mean effect over seeds and its two-way bootstrap interval.

    Each of `POOL_DRAWS` draws picks len(per_seed) seeds with replacement and one test-image
    resample (one replicate index, the same for every seed picked, since the seeds share the
    test images), and averages those seeds' replicates; the interval is the percentile
    interval of the draws. `key` seeds the draws (a comparison's name), so it is reproducible.
    """
    values = np.asarray([e["value"] for e in per_seed], dtype=np.float64)
    boots = np.asarray([e["boot"] for e in per_seed], dtype=np.float64)  # (S, B)
    s, b = boots.shape
    rng = np.random.default_rng([RESAMPLE_SEED, zlib.crc32(key.encode())])
    picked = rng.integers(0, s, size=(POOL_DRAWS, s))
    column = rng.integers(0, b, size=(POOL_DRAWS, 1))
    draws = boots[picked, column].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Pooled(float(values.mean()), float(low), float(high), s)


def seed_interval(one: Estimate, level: float) -> tuple[float, float]:
    """One seed's own percentile interval (its test-image resamples only)."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(one["boot"], dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


SUPPORTS, CONTRADICTS, INCONCLUSIVE = "supports", "contradicts", "inconclusive"


def outcome(low: float, high: float, expect: int) -> str:
    """Which side of zero the interval lies on, read against the article's expected sign.

    An interval that touches or straddles zero (a tie included) says nothing either way."""
    if (low > 0 and expect > 0) or (high < 0 and expect < 0):
        return SUPPORTS
    if (high < 0 and expect > 0) or (low > 0 and expect < 0):
        return CONTRADICTS
    return INCONCLUSIVE
