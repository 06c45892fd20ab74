"""Numbers for people: three significant figures, never an exponent, one rule per unit.

A column of one measure shows every value with the same number of decimals, chosen from the
column's largest magnitude (`decimals_for`), so 0.00009 sits beside 0.00327 as 0.00009, not as
9e-05. An effect is shown in its unit's fixed point (`UNIT_DECIMALS`), which follows from the
unit's smallest effect of interest: one decimal more than the margin needs. Minus signs are
true minus signs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from vaelab.evaluation.evidence import is_summary

MINUS = "−"
FIGURES = 3  # significant figures

# Decimals of an effect in each unit of the claims: two significant figures of its margin.
UNIT_DECIMALS = {
    "nats": 1,  # margin 1 nat
    "share": 3,  # margin 0.02
    "probability": 3,  # margin 0.02
    "digits": 2,  # margin 0.1 digits per walk
    "cloud radii": 2,  # margin 0.25
    "accuracy": 3,  # margin 0.01
    "V-measure": 3,  # margin 0.01
}


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def decimals_for(values: Iterable[Any], figures: int = FIGURES) -> int:
    """Decimals that give the largest magnitude among `values` `figures` significant figures
    (at least 0); numbers only, anything else ignored."""
    found = [abs(v) for v in values if _is_number(v) and math.isfinite(v) and v != 0]
    if not found:
        return 0
    return max(0, figures - 1 - math.floor(math.log10(max(found))))


def column_decimals(values: Iterable[Any], figures: int = FIGURES) -> int:
    """Decimals for one column of numbers or {mean, sd} summaries: `figures` significant
    figures of its largest mean, and more (two at most) where a spread between seeds would
    otherwise read as 0."""
    values = list(values)
    means = [v["mean"] if is_summary(v) else v for v in values]
    decimals = decimals_for(means, figures)
    spreads = [v["sd"] for v in values if is_summary(v) and v.get("sd")]
    if spreads:
        decimals = max(decimals, min(decimals_for([min(spreads)], 1), decimals + 2))
    return decimals


def unit_decimals(unit: str | None, margin: float | None = None) -> int:
    """An effect's decimals in `unit`: the table's, else two significant figures of its margin."""
    if unit in UNIT_DECIMALS:
        return UNIT_DECIMALS[unit]
    if margin:
        return max(0, 1 - math.floor(math.log10(abs(margin))))
    return 2


def fixed(value: Any, decimals: int, signed: bool = False) -> str:
    """`value` with exactly `decimals` decimals; "—" for a missing one; "+" when `signed`."""
    if not _is_number(value):
        return "—" if value is None else str(value)
    if round(value, decimals) == 0:  # no "−0.00" and no "+0.00": a zero has no sign
        return f"{0:.{decimals}f}"
    return _minus(f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}")


def sig(value: Any, figures: int = FIGURES, signed: bool = False) -> str:
    """One number to `figures` significant figures, never an exponent; whole numbers of
    `figures` digits or more are shown whole (1234 stays 1234)."""
    if not _is_number(value):
        return "—" if value is None else str(value)
    if isinstance(value, int) or (abs(value) >= 10 ** (figures - 1) and value == round(value)):
        return _minus(f"{value:+d}" if signed else f"{int(value)}")
    text = fixed(value, decimals_for([value], figures), signed)
    return text.rstrip("0").rstrip(".") if "." in text else text  # 3.00 -> 3, 0.500 -> 0.5


def effect(value: Any, unit: str | None, margin: float | None = None) -> str:
    """A signed effect in its unit's fixed point: "+2.3", "−0.041"."""
    return fixed(value, unit_decimals(unit, margin), signed=True)


def interval(pair: Any, unit: str | None, margin: float | None = None) -> str:
    """ "−0.12 to +0.34" in the unit's fixed point; "—" without one."""
    if not pair or len(pair) != 2:
        return "—"
    return f"{effect(pair[0], unit, margin)} to {effect(pair[1], unit, margin)}"


def summary(value: Any, decimals: int | None = None) -> str:
    """A number that may differ between seeds ({mean, sd, ...}) as "mean ± sd", both with the
    same decimals; a plain number as `sig`, or with `decimals` when given."""
    if is_summary(value):
        if value["mean"] is None:
            return "—"
        d = decimals if decimals is not None else decimals_for([value["mean"]])
        sd = "" if value.get("sd") is None else f" ± {fixed(value['sd'], d)}"
        return f"{fixed(value['mean'], d)}{sd}"
    if decimals is not None and _is_number(value):
        return fixed(value, decimals)
    return sig(value)


def percent(share: Any, decimals: int = 1) -> str:
    """0.1234 -> "12.3%"."""
    return "—" if not _is_number(share) else f"{100 * share:.{decimals}f}%"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
