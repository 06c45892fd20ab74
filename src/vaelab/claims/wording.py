"""One sentence per verdict: which comparisons decided it, with their effects and intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vaelab.evaluation.inference import CONTRADICTS, EQUIVALENT, INCONCLUSIVE, SUPPORTS

if TYPE_CHECKING:
    from vaelab.claims.verdicts import Comparison

TOO_FEW = "too few seeds"


def num(value: float) -> str:
    """+1.23, −0.0456, +1234: three significant digits, a true minus sign."""
    text = f"{value:+.3g}" if abs(value) < 1000 else f"{value:+.0f}"
    return text.replace("-", "−")


def reason(comparisons: Sequence[Comparison], verdict: str, named: int) -> str:
    """One sentence: which comparisons decided the verdict, with their effects."""
    if not comparisons:
        return "No comparison could be made: the numbers its rule needs were not measured."
    if verdict == TOO_FEW:
        most = max(c.seeds for c in comparisons)
        return (
            f"Measured in {most} seed{'s' * (most != 1)} of the {named} named: the spread "
            "between training runs is unknown, so no interval can hold its level; each seed's "
            "effects are shown as a description. Run at least two seeds."
        )
    by = {o: [c for c in comparisons if c.outcome == o] for o in (SUPPORTS, INCONCLUSIVE)}
    against = [c for c in comparisons if c.against]
    n, s, a, i = len(comparisons), len(by[SUPPORTS]), len(against), len(by[INCONCLUSIVE])
    if s == n:
        weakest = _cite(min(comparisons, key=_clearance))
        if n == 1:
            return f"Its one comparison supports it: {weakest}."
        return f"All {n} comparisons support it; the closest call: {weakest}."
    if s and a:
        return (
            f"{s} of {n} comparisons support it, e.g. "
            f"{_cite(max(by[SUPPORTS], key=_clearance))}, but {_against(against, n)}."
        )
    if a:
        rest = f"; {i} more inconclusive" if i else ""
        text = _against(against, n)
        return f"{text[0].upper()}{text[1:]}{rest}."
    undecided = min(by[INCONCLUSIVE], key=lambda x: abs(x.value) / _width(x))
    example = f"{_cite(undecided)}{_plan(undecided)}"
    if n == 1:
        return f"Its one comparison is inconclusive: {example}."
    if not s:
        return f"None of its {n} comparisons is decided, e.g. {example}."
    return (
        f"{s} of {n} comparisons support it and none goes against it; "
        f"{i} {'is' if i == 1 else 'are'} inconclusive, e.g. {example}."
    )


def _against(against: Sequence[Comparison], n: int) -> str:
    """ "2 contradict it, e.g. ...; in 1 the difference it predicts is absent, e.g. ..."."""
    contra = [c for c in against if c.outcome == CONTRADICTS]
    absent = [c for c in against if c.outcome == EQUIVALENT]
    parts = []
    if contra:
        verb = "contradicts" if len(contra) == 1 else "contradict"
        lead = f"its one comparison {verb}" if n == 1 else f"{len(contra)} of {n} {verb}"
        parts.append(f"{lead} it, e.g. {_cite(max(contra, key=_clearance))}")
    if absent:
        lead = "in its one comparison" if n == 1 else f"in {len(absent)} of {n}"
        best = min(absent, key=lambda c: max(abs(c.low), abs(c.high)) / c.margin)
        parts.append(
            f"{lead} the difference it predicts is absent, e.g. {_cite(best)}, "
            f"inside ±{best.margin:g} {best.unit}"
        )
    return "; ".join(parts)


def _plan(c: Comparison) -> str:
    if c.seeds_to_decide is None:
        return ""
    return f" (about {c.seeds_to_decide} seeds would decide it at the spread seen here)"


def _cite(c: Comparison) -> str:
    return f"{c.name}: {c.effect_text()}"


def _width(c: Comparison) -> float:
    return max(c.high - c.low, 1e-12)


def _clearance(c: Comparison) -> float:
    """How far the interval's nearer end is from zero, in interval widths."""
    return min(abs(c.low), abs(c.high)) / _width(c)
