"""Statistics of the study: summaries over seeds for tables, and the evidence the claims weigh.

Tables show a number that differs between seeds as mean ± sd with n (`across_seeds`).

The claims weigh *estimates*: a measure of one seed's models on the test images, with its
value and `DRAWS` bootstrap replicates, each the same measure on a resample of the test
images (or of the walks' image pairs). The resamples depend only on how many images there
are and on a fixed seed, never on the run seed, so every model of every seed is measured on
the same resamples: the difference of two estimates' replicates is a paired bootstrap of
their difference, and the same resample serves every seed (the seeds share their test images,
so their test-set noise is shared too). `vaelab.evaluation.inference` pools the seeds into an
interval; docs/statistics.md states the method, its assumptions and what few seeds can show.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DRAWS = 200  # bootstrap replicates kept per estimate (per seed): enough for a variance
RESAMPLE_SEED = 20180106  # the article's date: the one seed of every test-image resample
DIGITS = 6  # significant digits kept of each replicate in results.json

Estimate = dict[str, Any]  # {"value": float, "boot": [DRAWS floats], "items": int}


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


def estimate(value: float, boot: np.ndarray, items: int | None = None) -> Estimate:
    """A measure's value, its values on the resamples and how many items (images, walks) it
    was measured on (the inference needs it for the resample variance's own precision)."""
    found: Estimate = {"value": float(value), "boot": _rounded(boot)}
    if items is not None:
        found["items"] = int(items)
    return found


def mean_estimate(values: Sequence[float] | np.ndarray, draws: int = DRAWS) -> Estimate:
    """The mean of per-item values (per image, per walk) and its resampled means."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or not array.size:
        raise ValueError("a mean estimate needs a non-empty 1-D array of values")
    boot = resample_counts(array.size, draws).astype(np.float64) @ array / array.size
    return estimate(float(array.mean()), boot, array.size)


def statistic_estimate(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, draws: int = DRAWS
) -> Estimate:
    """Any statistic of n items: `statistic(index)` takes (m, k) item indices (a batch of m
    resamples of k items each) and returns the m values; the first is the full sample."""
    full = statistic(np.arange(n)[None, :])
    return estimate(float(full[0]), statistic(np.asarray(resamples(n, draws))), n)


def is_estimate(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and "boot" in value


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b, replicate by replicate: paired, since both come from the same resamples."""
    boot = np.asarray(a["boot"]) - np.asarray(b["boot"])
    found: Estimate = {"value": a["value"] - b["value"], "boot": boot.tolist()}
    items = [e["items"] for e in (a, b) if "items" in e]
    if items:
        found["items"] = min(items)
    return found
