"""What a rule makes: checks, each an effect with the outcome the article predicts for it, and
the smallest effect of interest of each unit the rules measure in.

A smallest effect of interest (a *margin*) says how large a difference must be to matter for
what the article saw: an interval inside (-margin, +margin) shows the difference absent
(`vaelab.evaluation.inference.outcome`). Each is written here with its reason, once per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vaelab.evaluation.evidence import Estimate, difference, is_estimate
from vaelab.evaluation.measured import Measured


@dataclass(frozen=True)
class Unit:
    name: str  # of the effect, e.g. "nats"
    margin: float  # the smallest effect of interest, in this unit
    why: str  # the reason for that margin, one line


NATS = Unit(
    "nats",
    1.0,
    "1 nat per image: the image's likelihood changes by a factor of e; smaller gaps do not "
    "show in a reconstruction",
)
SHARE = Unit(
    "share",
    0.02,
    "2 images in 100: fewer would not change what a grid of reconstructions shows",
)
PROBABILITY = Unit(
    "probability",
    0.02,
    "2 points of the classifier's probability: a shift that small does not change a reading",
)
DIGITS = Unit(
    "digits",
    0.1,
    "0.1 other digits per walk: one walk in ten passing one digit more",
)
RADII = Unit(
    "cloud radii",
    0.25,
    "a quarter of the cloud's RMS radius: a centre that close to the origin looks centred on "
    "it in a scatter plot",
)
ACCURACY = Unit(
    "accuracy",
    0.01,
    "1 test image in 100 named right: a scatter plot does not show less",
)
V_MEASURE = Unit(
    "V-measure",
    0.01,
    "0.01 V-measure: below the spread of one model's k-means restarts (sd 0.01 to 0.03), so "
    "the article's box plots could not show it",
)
UNITS = (NATS, SHARE, PROBABILITY, DIGITS, RADII, ACCURACY, V_MEASURE)


@dataclass(frozen=True)
class Check:
    effect: Estimate | None  # what is judged in this seed; None: shown, not judged
    expect: int  # +1 / -1: the article predicts an effect of that sign; 0: one near zero
    measure: str  # what the effect is, e.g. "VAE NLL − AE NLL"
    unit: Unit | None  # its unit and smallest effect of interest (None: shown only)
    sides: dict[str, Estimate] = field(default_factory=dict)  # the measures compared
    article: str | None = None  # what the article itself reports for this comparison
    shown: dict[str, Any] | None = None  # numbers shown beside it, not judged


Checks = dict[str, Check]


def by_z(tree: Any) -> list[str]:
    """The keys of a {"<z>": ...} dict in increasing z; none when it is missing."""
    return sorted(tree or {}, key=int)


def shown_zs(m: Measured, tree: Any) -> list[str]:
    """The z keys of `tree` among experiment 1's latent sizes (the article showed 4, 16, 64),
    in increasing z."""
    return [z for z in by_z(tree) if z in m.shown_latents]


def upper(name: str) -> str:
    """ "cvae (no label)" -> "CVAE (no label)"."""
    kind, _, mode = name.partition(" ")
    return f"{kind.upper()} {mode}".strip()


def compare(
    a: Any, b: Any, expect: int, measure: str, unit: Unit, names: tuple[str, str], **extra: Any
) -> Check | None:
    """The check that `a - b` has the sign `expect`; None when either estimate is missing."""
    if not (is_estimate(a) and is_estimate(b)):
        return None
    sides = {names[0]: a, names[1]: b}
    return Check(difference(a, b), expect, measure, unit, sides, **extra)


def near_zero(a: Any, measure: str, unit: Unit, name: str, **extra: Any) -> Check | None:
    """The check that `a` lies within ±unit.margin of zero; None when it is missing."""
    if not is_estimate(a):
        return None
    return Check(a, 0, measure, unit, {name: a}, **extra)


def add(checks: Checks, name: str, check: Check | None) -> None:
    if check is not None:
        checks[name] = check
