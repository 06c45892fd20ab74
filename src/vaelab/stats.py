"""Small statistics over seeds and runs: summaries for tables and the tests the claims use.

A study repeats everything once per seed; a table then shows each number as mean ± sd with n.
The claims compare two samples (k-means runs, per-image probabilities) with scipy's tests;
the helpers here give those tests one shape: a p-value that is a finite float or None.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05  # significance level of every one-sided test the claims make


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


def _p(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def greater(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """One-sided Mann-Whitney U test that values of `a` tend to exceed those of `b`.

    For independent samples, e.g. the V-measures of 50 k-means runs on two models' codes.
    Returns both means, the p-value and `shown` (p < ALPHA).
    """
    a_arr, b_arr = _finite(a), _finite(b)
    if not a_arr.size or not b_arr.size:
        return {"mean_a": None, "mean_b": None, "p": None, "shown": False}
    p = _p(stats.mannwhitneyu(a_arr, b_arr, alternative="greater").pvalue)
    return _result(float(a_arr.mean()), float(b_arr.mean()), p, len(a_arr), len(b_arr))


def paired_greater(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """One-sided Wilcoxon signed-rank test that a[i] tends to exceed b[i] (same items).

    For paired samples, e.g. the classifier's probability of one label on two reconstructions
    of the same image. Pairs with no difference carry no evidence either way; when every pair
    is tied the p-value is 1.
    """
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError(f"paired samples need equal 1-D shapes, got {a_arr.shape}, {b_arr.shape}")
    if not a_arr.size:
        return {"mean_a": None, "mean_b": None, "p": None, "shown": False}
    if not np.any(a_arr != b_arr):
        p: float | None = 1.0
    else:
        with warnings.catch_warnings():  # few pairs: scipy warns that the p-value is coarse
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            p = _p(stats.wilcoxon(a_arr, b_arr, alternative="greater").pvalue)
    return _result(float(a_arr.mean()), float(b_arr.mean()), p, len(a_arr), len(b_arr))


def _result(mean_a: float, mean_b: float, p: float | None, n_a: int, n_b: int) -> dict[str, Any]:
    return {
        "mean_a": mean_a,
        "mean_b": mean_b,
        "n_a": n_a,
        "n_b": n_b,
        "p": p,
        "shown": p is not None and p < ALPHA,
    }


def across_seeds(per_seed: Sequence[Any]) -> Any:
    """The same nested numbers of every seed -> one tree for tables: a number equal in every
    seed stays as it is (a setting, a count); one that differs becomes `summarize_seeds`'
    {mean, sd, n, min, max}. Lists and strings are the first seed's (figures show it)."""
    present = [t for t in per_seed if t is not None]
    if not present:
        return None
    if all(isinstance(t, dict) for t in present):
        keys = list(dict.fromkeys(k for t in present for k in t))
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
