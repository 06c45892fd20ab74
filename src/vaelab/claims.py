"""The article's eight claims, judged from the study's numbers of every seed by stated rules.

Each claim's rule (`vaelab.claim_rules`) makes named comparisons, and every comparison is
evaluated separately in each seed: true, false, or not measured there. A comparison
*agrees* when it is true in every seed, *disagrees* when it is false in every seed and is
*unsettled (k of n)* otherwise, k being the seeds where it is true. A claim *holds* when all
its comparisons agree, *does not hold* when all disagree, is *mixed* otherwise and *not
measured* when the numbers for its rule are missing in every seed. With one seed every
verdict is provisional: nothing yet says whether another seed would agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vaelab.claim_rules import RULES, Check, Rule

HOLDS, FAILS, MIXED, MISSING = "holds", "does not hold", "mixed", "not measured"
AGREES, DISAGREES, UNSETTLED = "agrees", "disagrees", "unsettled"


@dataclass(frozen=True)
class Comparison:
    name: str
    outcomes: tuple[bool | None, ...]  # per seed; None: not measured in that seed
    numbers: tuple[dict[str, Any] | None, ...]  # per seed, what was compared
    article: str | None = None  # what the article reports, shown beside the numbers

    @property
    def agreeing(self) -> int:
        return sum(o is True for o in self.outcomes)

    @property
    def status(self) -> str:
        if self.outcomes and self.agreeing == len(self.outcomes):
            return AGREES
        if self.outcomes and all(o is False for o in self.outcomes):
            return DISAGREES
        return UNSETTLED

    @property
    def label(self) -> str:
        """ "agrees", "disagrees" or "unsettled (k of n)"."""
        if self.status != UNSETTLED:
            return self.status
        return f"{UNSETTLED} ({self.agreeing} of {len(self.outcomes)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "label": self.label,
            "agreeing": self.agreeing,
            "seeds": len(self.outcomes),
            "outcomes": list(self.outcomes),
            "numbers": list(self.numbers),
            "article": self.article,
        }


@dataclass(frozen=True)
class Claim:
    number: int
    text: str  # the article's claim in plain words
    rule: str  # how each seed's comparisons are computed
    seeds: tuple[int, ...]  # the seeds judged, in the order of each comparison's outcomes
    comparisons: tuple[Comparison, ...]
    context: tuple[Comparison, ...] = ()  # evidence shown beside the comparisons, not judged

    @property
    def verdict(self) -> str:
        return verdict([c.status for c in self.comparisons])

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
            "seeds": list(self.seeds),
            "provisional": self.provisional,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "context": [c.to_dict() for c in self.context],
        }


def verdict(statuses: Sequence[str]) -> str:
    """All comparisons agree: holds; all disagree: does not hold; else mixed; none: not measured."""
    if not statuses:
        return MISSING
    if all(s == AGREES for s in statuses):
        return HOLDS
    return FAILS if all(s == DISAGREES for s in statuses) else MIXED


def judge_rule(
    rule: Rule, per_seed: Sequence[Mapping[str, Any] | None], seeds: Sequence[int]
) -> Claim:
    """Apply one rule in every seed and line its comparisons up by name."""
    found: list[dict[str, Check]] = [rule.checks(dict(r or {})) for r in per_seed]
    names = list(dict.fromkeys(name for checks in found for name in checks))
    judged, context = [], []
    for name in names:
        here = [checks.get(name) for checks in found]
        article = next((c.article for c in here if c is not None and c.article), None)
        comparison = Comparison(
            name,
            tuple(None if c is None else c.outcome for c in here),
            tuple(None if c is None else c.numbers for c in here),
            article,
        )
        shown_only = all(c is None or c.outcome is None for c in here)
        (context if shown_only else judged).append(comparison)
    return Claim(rule.number, rule.text, rule.rule, tuple(seeds), tuple(judged), tuple(context))


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
