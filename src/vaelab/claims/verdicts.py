"""The article's eight claims, judged from the study's numbers of every seed by stated rules.

Each claim's rule (`vaelab.claims.rules`) makes named comparisons in every seed; each is an
effect in the measure's own unit with test-image resamples. Here each comparison is pooled
over the seeds (`stats.pool`): its effect is the mean over seeds, its interval a two-way
bootstrap of seeds and test images. The intervals of one claim hold jointly at 95%: each is
a 1 - 0.05/m interval for the claim's m comparisons (Bonferroni). A comparison *supports*
the article when its interval lies on the article's side of zero, *contradicts* it when it
lies on the other side, and is *inconclusive* otherwise (ties included).

A claim's verdict (`verdict`):
- supported: every comparison supports it;
- contradicted: at least one contradicts it and none supports it;
- parts disagree: some comparisons support it and some contradict it;
- inconclusive: none contradicts it, but not every one supports it;
- not measured: no comparison could be made.
Each verdict comes with one sentence naming the comparisons that decided it (`reason`).
With one seed every verdict is provisional: nothing yet says whether another seed would agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vaelab.claims.rules import RULES, Check, Rule
from vaelab.evaluation.evidence import (
    ALPHA,
    CONTRADICTS,
    INCONCLUSIVE,
    SUPPORTS,
    outcome,
    pool,
    seed_interval,
)

SUPPORTED, CONTRADICTED, SPLIT = "supported", "contradicted", "parts disagree"
UNDECIDED, MISSING = "inconclusive", "not measured"
VERDICTS = (SUPPORTED, CONTRADICTED, SPLIT, UNDECIDED, MISSING)


@dataclass(frozen=True)
class Comparison:
    name: str
    measure: str  # what the effect is, e.g. "VAE NLL − AE NLL"
    unit: str
    expect: int  # the article's sign of the effect
    value: float  # the effect, mean over the seeds that measured it
    low: float  # its interval at `level`
    high: float
    level: float  # each interval's own coverage (the claim's intervals hold jointly at 95%)
    outcome: str  # supports, contradicts or inconclusive
    per_seed: tuple[dict[str, Any] | None, ...]  # per seed: value, interval, outcome, sides
    sides: dict[str, float]  # the two measures compared, means over the seeds
    article: str | None = None
    shown: tuple[dict[str, Any] | None, ...] = ()  # per seed, numbers shown beside it

    def effect_text(self) -> str:
        """ "VAE NLL − AE NLL = −2.31 nats (−2.9 to −1.8)"."""
        return (
            f"{self.measure} = {_num(self.value)} {self.unit} "
            f"({_num(self.low)} to {_num(self.high)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measure": self.measure,
            "unit": self.unit,
            "expect": "positive" if self.expect > 0 else "negative",
            "effect": self.value,
            "interval": [self.low, self.high],
            "level": self.level,
            "outcome": self.outcome,
            "text": self.effect_text(),
            "sides": self.sides,
            "per_seed": list(self.per_seed),
            "article": self.article,
            "shown": list(self.shown),
        }


@dataclass(frozen=True)
class Shown:
    """Evidence shown beside a claim's comparisons, never judged."""

    name: str
    numbers: tuple[dict[str, Any] | None, ...]  # per seed

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "numbers": list(self.numbers)}


@dataclass(frozen=True)
class Claim:
    number: int
    text: str  # the article's claim in plain words
    rule: str  # how each seed's comparisons are computed
    seeds: tuple[int, ...]  # the seeds judged, in the order of each comparison's per_seed
    comparisons: tuple[Comparison, ...]
    context: tuple[Shown, ...] = ()

    @property
    def verdict(self) -> str:
        return verdict([c.outcome for c in self.comparisons])

    @property
    def reason(self) -> str:
        return reason(self.comparisons)

    @property
    def provisional(self) -> bool:
        """Judged on one seed: nothing yet says whether another seed would agree."""
        return len(self.seeds) == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "text": self.text,
            "rule": self.rule,
            "verdict": self.verdict,
            "reason": self.reason,
            "seeds": list(self.seeds),
            "provisional": self.provisional,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "context": [c.to_dict() for c in self.context],
        }


def verdict(outcomes: Sequence[str]) -> str:
    """The stated rule: see the module docstring."""
    if not outcomes:
        return MISSING
    supports, contradicts = SUPPORTS in outcomes, CONTRADICTS in outcomes
    if all(o == SUPPORTS for o in outcomes):
        return SUPPORTED
    if supports and contradicts:
        return SPLIT
    return CONTRADICTED if contradicts else UNDECIDED


def reason(comparisons: Sequence[Comparison]) -> str:
    """One sentence: which comparisons decided the verdict, with their effects."""
    if not comparisons:
        return "No comparison could be made: the numbers its rule needs were not measured."
    by = {o: [c for c in comparisons if c.outcome == o] for o in (SUPPORTS, CONTRADICTS)}
    by[INCONCLUSIVE] = [c for c in comparisons if c.outcome == INCONCLUSIVE]
    n, s, c, i = len(comparisons), *(len(by[o]) for o in (SUPPORTS, CONTRADICTS, INCONCLUSIVE))
    if s == n:
        weakest = _cite(min(comparisons, key=_margin))
        if n == 1:
            return f"Its one comparison supports it: {weakest}."
        return f"All {n} comparisons support it; the closest call: {weakest}."
    if s and c:
        return (
            f"{s} of {n} comparisons support it, e.g. {_cite(max(by[SUPPORTS], key=_margin))}, "
            f"but {c} {'contradicts' if c == 1 else 'contradict'} it, "
            f"e.g. {_cite(max(by[CONTRADICTS], key=_margin))}."
        )
    if c:
        rest = f"; {i} more inconclusive" if i else ""
        strongest = _cite(max(by[CONTRADICTS], key=_margin))
        return f"{_count(c, n, 'contradicts', 'contradict')} it: {strongest}{rest}."
    undecided = _cite(min(by[INCONCLUSIVE], key=lambda x: abs(x.value) / _width(x)))
    if n == 1:
        return f"Its one comparison is inconclusive: {undecided}."
    return (
        f"{s} of {n} comparisons support it and none contradicts it; "
        f"{i} {'is' if i == 1 else 'are'} inconclusive, e.g. {undecided}."
    )


def _count(k: int, n: int, one: str, many: str) -> str:
    if n == 1:
        return f"its one comparison {one}"
    return f"{k} of {n} comparisons {one if k == 1 else many}"


def _cite(c: Comparison) -> str:
    return f"{c.name}: {c.effect_text()}"


def _width(c: Comparison) -> float:
    return max(c.high - c.low, 1e-12)


def _margin(c: Comparison) -> float:
    """How far the interval's nearer end is from zero, in interval widths."""
    return min(abs(c.low), abs(c.high)) / _width(c)


def _num(value: float) -> str:
    text = f"{value:+.3g}" if abs(value) < 1000 else f"{value:+.0f}"
    return text.replace("-", "−")


def judge_rule(
    rule: Rule, per_seed: Sequence[Mapping[str, Any] | None], seeds: Sequence[int]
) -> Claim:
    """Apply one rule in every seed, line its comparisons up by name and pool each."""
    found: list[dict[str, Check]] = [rule.checks(dict(r or {})) for r in per_seed]
    names = list(dict.fromkeys(name for checks in found for name in checks))
    judged = [n for n in names if any(n in f and f[n].effect is not None for f in found)]
    level = 1 - ALPHA / max(1, len(judged))
    comparisons = tuple(_pooled(name, [f.get(name) for f in found], level) for name in judged)
    context = tuple(
        Shown(n, tuple(None if f.get(n) is None else f[n].shown for f in found))
        for n in names
        if n not in judged
    )
    return Claim(rule.number, rule.text, rule.rule, tuple(seeds), comparisons, context)


def _pooled(name: str, checks: list[Check | None], level: float) -> Comparison:
    present = [c for c in checks if c is not None and c.effect is not None]
    first = present[0]
    pooled = pool([c.effect for c in present], level, key=name)
    per_seed = []
    for c in checks:
        if c is None or c.effect is None:
            per_seed.append(None)
            continue
        low, high = seed_interval(c.effect, level)
        per_seed.append(
            {
                "effect": c.effect["value"],
                "interval": [low, high],
                "outcome": outcome(low, high, c.expect),
                "sides": {k: v["value"] for k, v in c.sides.items()},
            }
        )
    sides = {k: sum(c.sides[k]["value"] for c in present) / len(present) for k in first.sides}
    return Comparison(
        name=name,
        measure=first.measure,
        unit=first.unit,
        expect=first.expect,
        value=pooled.value,
        low=pooled.low,
        high=pooled.high,
        level=level,
        outcome=outcome(pooled.low, pooled.high, first.expect),
        per_seed=tuple(per_seed),
        sides=sides,
        article=first.article,
        shown=tuple(None if c is None else c.shown for c in checks),
    )


def judge_claims(
    per_seed: Sequence[Mapping[str, Any] | None] | Mapping[str, Any],
    seeds: Sequence[int] | None = None,
) -> list[Claim]:
    """Every claim's verdict over the seeds.

    `per_seed[i]` is seed i's `{experiment name: numbers}` (None: that seed produced none);
    `seeds` names them (default 0, 1, ...). A single dict is one seed's numbers.
    """
    runs = [per_seed] if isinstance(per_seed, Mapping) else list(per_seed)
    labels = list(range(len(runs))) if seeds is None else [int(s) for s in seeds]
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} seeds named for {len(runs)} sets of numbers")
    return [judge_rule(rule, runs, labels) for rule in RULES]
