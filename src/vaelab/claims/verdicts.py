"""The article's eight claims, judged from the study's numbers of every seed by stated rules.

Each claim's rule (`vaelab.claims.rules`) makes named comparisons in every seed; each is an
effect in its unit with test-image resamples and a smallest effect of interest (its margin).
Here each comparison is pooled over the seeds (`inference.pool`): its effect is the mean over
seeds, its interval the random-effects interval of the crossed seeds x images design. The
intervals of one claim hold jointly at 95%: each is a 1 - 0.05/m interval for the claim's m
comparisons (Bonferroni). A comparison's outcome (`inference.outcome`): *supports* when its
interval lies on the article's side of zero, *contradicts* when it lies on the other side,
*equivalent* when it lies inside ±margin (the difference the article predicts is absent), and
*inconclusive* otherwise; a value the article puts near zero supports it inside ±margin.

A claim's verdict (`verdict`), reading an equivalent comparison as evidence against it:
- supported: every comparison supports it;
- contradicted: at least one contradicts it or shows its difference absent, none supports it;
- parts disagree: some comparisons support it and some go against it;
- inconclusive: none goes against it, but not every one supports it;
- too few seeds: fewer than two seeds measured it, so the spread between training runs is
  unknown and no interval holds its level (each seed's effects are still shown);
- not measured: no comparison could be made.
Each verdict comes with one sentence naming the comparisons that decided it (`reason`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vaelab.claims.checks import Check, Unit
from vaelab.claims.rules import RULES, Rule
from vaelab.claims.wording import TOO_FEW, num, reason
from vaelab.evaluation.inference import (
    ALPHA,
    CONTRADICTS,
    EQUIVALENT,
    INCONCLUSIVE,
    MIN_SEEDS,
    SUPPORTS,
    decidable,
    outcome,
    pool,
    seed_interval,
    seeds_to_decide,
    sign_agreement,
)
from vaelab.evaluation.measured import Measured

SUPPORTED, CONTRADICTED, SPLIT = "supported", "contradicted", "parts disagree"
UNDECIDED, MISSING = "inconclusive", "not measured"
VERDICTS = (SUPPORTED, CONTRADICTED, SPLIT, UNDECIDED, TOO_FEW, MISSING)
EXPECT_WORDS = {1: "positive", -1: "negative", 0: "near zero"}


@dataclass(frozen=True)
class Comparison:
    name: str
    measure: str  # what the effect is, e.g. "VAE NLL − AE NLL"
    unit: str
    expect: int  # the article's sign of the effect; 0: near zero
    value: float  # the effect, mean over the seeds that measured it
    low: float  # its interval at `level`
    high: float
    level: float  # each interval's own coverage (the claim's intervals hold jointly at 95%)
    outcome: str  # supports, contradicts, equivalent or inconclusive
    per_seed: tuple[dict[str, Any] | None, ...]  # per seed: value, interval, outcome, sides
    sides: dict[str, float]  # the measures compared, means over the seeds
    margin: float = 0.0  # the smallest effect of interest, in `unit`
    margin_why: str = ""
    seeds: int = 0  # how many seeds measured it
    seed_sd: float | None = None  # sd of the per-seed effects (None with one seed)
    image_se: float = 0.0  # sd of the seed-averaged effect over the test-image resamples
    holds_level: bool = True  # False: one seed, its interval holds the images' noise only
    sign: dict[str, Any] | None = None  # seeds agreeing with the article's sign, sign-test p
    seeds_to_decide: int | None = None  # an inconclusive one: seeds that would decide it
    article: str | None = None
    shown: tuple[dict[str, Any] | None, ...] = ()  # per seed, numbers shown beside it

    @property
    def against(self) -> bool:
        """Evidence against the claim: contradicted, or the predicted difference absent."""
        return self.outcome in (CONTRADICTS, EQUIVALENT)

    def effect_text(self) -> str:
        """ "VAE NLL − AE NLL = −2.31 nats (−2.9 to −1.8)"."""
        return (
            f"{self.measure} = {num(self.value)} {self.unit} ({num(self.low)} to {num(self.high)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measure": self.measure,
            "unit": self.unit,
            "expect": EXPECT_WORDS[self.expect],
            "effect": self.value,
            "interval": [self.low, self.high],
            "level": self.level,
            "outcome": self.outcome,
            "text": self.effect_text(),
            "margin": self.margin,
            "margin_reason": self.margin_why,
            "seeds": self.seeds,
            "seed_sd": self.seed_sd,
            "image_se": self.image_se,
            "half_width": (self.high - self.low) / 2,
            "holds_level": self.holds_level,
            "agree_in_sign": self.sign,
            "seeds_to_decide": self.seeds_to_decide,
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
    seeds: tuple[int, ...]  # the seeds named, in the order of each comparison's per_seed
    comparisons: tuple[Comparison, ...]
    context: tuple[Shown, ...] = ()
    units: tuple[Unit, ...] = ()  # its comparisons' units, each with its margin and reason

    @property
    def seeds_measured(self) -> int:
        """The fewest seeds that measured any of its comparisons (0: none was made)."""
        return min((c.seeds for c in self.comparisons), default=0)

    @property
    def level(self) -> float | None:
        return self.comparisons[0].level if self.comparisons else None

    @property
    def verdict(self) -> str:
        if self.comparisons and max(c.seeds for c in self.comparisons) < MIN_SEEDS:
            return TOO_FEW
        return verdict([c.outcome for c in self.comparisons])

    @property
    def reason(self) -> str:
        return reason(self.comparisons, self.verdict, len(self.seeds))

    @property
    def provisional(self) -> bool:
        """Fewer than two seeds measured some comparison: nothing says what another would."""
        return bool(self.comparisons) and self.seeds_measured < MIN_SEEDS

    @property
    def decidable(self) -> float | None:
        """The smallest effect its seeds can decide, in units of the seed spread."""
        level = self.level
        return None if level is None else decidable(self.seeds_measured, level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "text": self.text,
            "rule": self.rule,
            "verdict": self.verdict,
            "reason": self.reason,
            "seeds": list(self.seeds),
            "seeds_measured": self.seeds_measured,
            "provisional": self.provisional,
            "level": self.level,
            "decidable_seed_sds": self.decidable,
            "margins": [{"unit": u.name, "margin": u.margin, "reason": u.why} for u in self.units],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "context": [c.to_dict() for c in self.context],
        }


def verdict(outcomes: Sequence[str]) -> str:
    """The stated rule, on comparisons that predict a difference or a value near zero alike
    (an *equivalent* outcome only arises for a predicted difference): see the docstring."""
    if not outcomes:
        return MISSING
    supports = SUPPORTS in outcomes
    against = CONTRADICTS in outcomes or EQUIVALENT in outcomes
    if all(o == SUPPORTS for o in outcomes):
        return SUPPORTED
    if supports and against:
        return SPLIT
    return CONTRADICTED if against else UNDECIDED


def judge_rule(
    rule: Rule, per_seed: Sequence[Mapping[str, Any] | None], seeds: Sequence[int]
) -> Claim:
    """Apply one rule in every seed, line its comparisons up by name and pool each."""
    found: list[dict[str, Check]] = [rule.checks(Measured.read(r)) for r in per_seed]
    names = list(dict.fromkeys(name for checks in found for name in checks))
    judged = [n for n in names if any(n in f and f[n].effect is not None for f in found)]
    level = 1 - ALPHA / max(1, len(judged))
    comparisons = tuple(_pooled(name, [f.get(name) for f in found], level) for name in judged)
    context = tuple(
        Shown(n, tuple(None if f.get(n) is None else f[n].shown for f in found))
        for n in names
        if n not in judged
    )
    return Claim(rule.number, rule.text, rule.rule, tuple(seeds), comparisons, context, rule.units)


def _one_seed(c: Check | None, level: float) -> dict[str, Any] | None:
    """One seed's effect with an interval from its test images alone (a description)."""
    if c is None or c.effect is None or c.unit is None:
        return None
    low, high = seed_interval(c.effect, level)
    return {
        "effect": c.effect["value"],
        "interval": [low, high],
        "outcome": outcome(low, high, c.expect, c.unit.margin),
        "sides": {k: v["value"] for k, v in c.sides.items()},
    }


def _pooled(name: str, checks: list[Check | None], level: float) -> Comparison:
    present = [c for c in checks if c is not None and c.effect is not None]
    first = present[0]
    unit = first.unit or Unit("", 0.0, "")
    pooled = pool([c.effect for c in present], level)
    decided = outcome(pooled.low, pooled.high, first.expect, unit.margin)
    found = decided if pooled.holds_level else INCONCLUSIVE
    plan = seeds_to_decide(pooled, level, first.expect, unit.margin)
    sides = {k: sum(c.sides[k]["value"] for c in present) / len(present) for k in first.sides}
    return Comparison(
        name=name,
        measure=first.measure,
        unit=unit.name,
        expect=first.expect,
        value=pooled.value,
        low=pooled.low,
        high=pooled.high,
        level=level,
        outcome=found,
        per_seed=tuple(_one_seed(c, level) for c in checks),
        sides=sides,
        margin=unit.margin,
        margin_why=unit.why,
        seeds=pooled.seeds,
        seed_sd=pooled.seed_sd,
        image_se=pooled.image_se,
        holds_level=pooled.holds_level,
        sign=sign_agreement([c.effect["value"] for c in present], first.expect),
        seeds_to_decide=plan if found == INCONCLUSIVE else None,
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
