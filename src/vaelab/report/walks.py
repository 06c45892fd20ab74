"""The interpolations as the article showed them: a grid of walks × z, the article's own walks
first, each frame's reading under it, and one caption that says where an example walk goes
against the verdict pooled over many walks and seeds."""

from __future__ import annotations

import re
from typing import Any

from vaelab.evaluation.measured import DigitPair
from vaelab.report.names import ARROW

STEM = re.compile(
    r"figures/walk_(?P<train>train)?(?P<a>\d+)to(?P<b>\d+)_z(?P<z>\d+)\.(?P<ext>png|gif)"
)


def walk_grid(
    figures: list[dict[str, Any]],
    interpolation: dict[str, Any] | None,
    walk_claim: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """[{"key", "heading", "article", "rows": [{"z", "png", "gif"}]}]: the article's walks
    (between training images) first, then the seeded walks' first pairs, z increasing.
    `figures` are the report's inlined interpolation figures, `interpolation` the first seed's
    numbers, `walk_claim` claim 4 (for what the article saw)."""
    walks: dict[tuple[bool, str, str], dict[int, dict[str, Any]]] = {}
    for f in figures:
        found = STEM.fullmatch(f["file"])
        if found:
            key = (not found["train"], found["a"], found["b"])
            walks.setdefault(key, {}).setdefault(int(found["z"]), {})[found["ext"]] = f
    numbers = interpolation or {}
    grid = []
    ordered = [k for k in walks if not k[0]] + [k for k in walks if k[0]]  # the article's first
    for seeded, a, b in ordered:
        by_z = walks[(seeded, a, b)]
        key = DigitPair(int(a), int(b)).key
        if seeded:
            heading = f"The first test {a} {ARROW} the first test {b}"
            digits = (int(a), int(b))
        else:
            entry = (numbers.get("article_walks") or {}).get(key) or {}
            digits = tuple(entry.get("digits") or (None, None))
            said = f" (a {digits[0]} {ARROW} a {digits[1]})" if None not in digits else ""
            heading = f"The article's walk: training images {a} {ARROW} {b}{said}"
        rows = [{"z": z, "png": v.get("png"), "gif": v.get("gif")} for z, v in sorted(by_z.items())]
        label = f"{a} {ARROW} {b}" if seeded else f"training images {a} {ARROW} {b}"
        grid.append(
            {
                "key": key,
                "label": label,
                "seeded": seeded,
                "heading": heading,
                "article": _article_saw(walk_claim, digits),
                "rows": rows,
            }
        )
    return grid


def _article_saw(claim: dict[str, Any] | None, digits: tuple[Any, ...]) -> str:
    """What the article reports for the walk between these two digits, from claim 4."""
    if claim is None or None in digits:
        return ""
    prefix = f"{digits[0]} {ARROW} {digits[1]}:"
    for c in claim.get("comparisons") or []:
        if c["name"].startswith(prefix) and c.get("article"):
            return c["article"].replace("->", ARROW)
    return ""


def others_passed(readings: list[int], a: int, b: int) -> int:
    """Distinct digits read strictly inside a walk other than its two digits and what its end
    frames read as (claim 4's count, on one walk)."""
    return len(set(readings[1:-1]) - {a, b, readings[0], readings[-1]})


def example_note(
    interpolation: dict[str, Any] | None, claim: dict[str, Any] | None, seeds: int
) -> str:
    """The sentence that says whether the example walks (the first pair, first seed) show the
    trend claim 4 is judged on, and how that sits beside the pooled verdict."""
    walks = (interpolation or {}).get("walks") or {}
    if not walks or claim is None:
        return ""
    counts = {}
    for key, by_z in walks.items():
        pair = DigitPair.parse(key)
        zs = sorted(by_z, key=int)
        counts[key] = [
            (int(z), others_passed(by_z[z]["readings"], pair.first, pair.second)) for z in zs
        ]
    against = [
        k for k, c in counts.items() if any(x[1] < y[1] for x, y in zip(c, c[1:], strict=False))
    ]
    told = "; ".join(
        f"{k.replace('to', f' {ARROW} ')} passes " + ", ".join(f"{n} at z={z}" for z, n in c)
        for k, c in counts.items()
    )
    pairs = (interpolation or {}).get("pairs")
    many = f"{pairs} walks per pair and z" if pairs else "many walks"
    pooled = f"claim 4 weighs {many} in each of the {seeds} seed{'s' * (seeds != 1)}"
    verdict = claim.get("verdict")
    if against and verdict == "supported":
        return (
            f"Other digits passed by the example walks: {told}. The "
            f"{' and '.join(k.replace('to', f' {ARROW} ') for k in against)} example goes "
            f"against the pooled verdict (supported): it is one walk of one seed, and "
            f"{pooled}."
        )
    if not against and verdict in ("contradicted", "parts disagree"):
        return (
            f"Other digits passed by the example walks: {told}. They show the article's "
            f"trend, yet the pooled verdict is {verdict}: each is one walk of one seed, "
            f"and {pooled}."
        )
    return f"Other digits passed by the example walks: {told}; {pooled}."
