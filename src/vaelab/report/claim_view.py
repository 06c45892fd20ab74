"""What the page shows of each claim: its row of the verdict matrix, its plain sentence, its
short table and its per-seed rows, every number in its unit's fixed point."""

from __future__ import annotations

from typing import Any

from vaelab.report import numbers
from vaelab.report.cells import MARKS, claim_cells, groups
from vaelab.report.forest import row_label
from vaelab.report.header import short_claim
from vaelab.report.names import arrows, model_name
from vaelab.report.sentences import plain_sentence

VERDICT_CLASS = {
    "supported": "holds",
    "contradicted": "fails",
    "parts disagree": "split",
    "inconclusive": "mixed",
    "too few seeds": "mixed",
    "not measured": "mixed",
}
OUTCOME_CLASS = {"supports": "s", "contradicts": "x", "equivalent": "e", "inconclusive": "u"}
BACKING = {
    1: "reconstruction",
    2: "reconstruction",
    3: "reconstruction",
    4: "walks",
    5: "latent",
    6: "latent",
    7: "clustering",
    8: "clustering",
}


def claim_view(claim: dict[str, Any], shown_latent: int | None = None) -> dict[str, Any]:
    """One claim as the page shows it."""
    cells = claim_cells(claim, shown_latent)
    rows = [_row(c, cell) for c, cell in zip(claim["comparisons"], cells, strict=True)]
    return {
        "number": claim["number"],
        "text": arrows(claim["text"]),
        "short": short_claim(claim),
        "verdict": claim["verdict"],
        "verdict_class": VERDICT_CLASS.get(claim["verdict"], "mixed"),
        "sentence": plain_sentence(claim, shown_latent),
        "blocks": groups(cells),
        "rows": rows,
        "seeds": claim.get("seeds") or [],
        "per_seed": [
            _per_seed(c, cell, claim.get("seeds") or [])
            for c, cell in zip(claim["comparisons"], cells, strict=True)
        ],
        "articles": list(
            dict.fromkeys(arrows(c["article"]) for c in claim["comparisons"] if c.get("article"))
        ),
        "context": [_context(s) for s in claim.get("context") or []],
        "rule": arrows(claim.get("rule") or ""),
        "margins": claim.get("margins") or [],
        "level": claim.get("level"),
        "decidable": claim.get("decidable_seed_sds"),
        "seeds_measured": claim.get("seeds_measured"),
        "backing": BACKING.get(claim["number"]),
    }


def _row(c: dict[str, Any], cell: Any) -> dict[str, Any]:
    unit, margin = c.get("unit"), c.get("margin")
    sign = c.get("agree_in_sign") or {}
    return {
        "label": row_label(cell),
        "effect": numbers.effect(c.get("effect"), unit, margin),
        "interval": numbers.interval(c.get("interval"), unit, margin),
        "unit": unit,
        "outcome": c.get("outcome"),
        "mark": MARKS.get(c.get("outcome"), "?"),
        "cls": OUTCOME_CLASS.get(c.get("outcome"), "u"),
        "agree": f"{sign['agree']} of {sign['of']}" if sign.get("of") else "",
        "p": numbers.sig(sign.get("p")) if sign.get("of") else "",
        "measure": arrows(c.get("measure") or ""),
        "seeds_to_decide": c.get("seeds_to_decide"),
    }


def _per_seed(c: dict[str, Any], cell: Any, seeds: list[int]) -> dict[str, Any]:
    """One line per comparison: each seed's effect with its mark; its interval on hover."""
    unit, margin = c.get("unit"), c.get("margin")
    found = []
    for seed, one in zip(seeds, c.get("per_seed") or [], strict=False):
        if not one:
            found.append(
                {
                    "seed": seed,
                    "text": "–",
                    "title": f"seed {seed}: not measured",
                    "cls": "u",
                    "mark": "",
                }
            )
            continue
        span = numbers.interval(one.get("interval"), unit, margin)
        found.append(
            {
                "seed": seed,
                "text": numbers.effect(one.get("effect"), unit, margin),
                "title": f"seed {seed}: {span} {unit} on its test images alone",
                "cls": OUTCOME_CLASS.get(one.get("outcome"), "u"),
                "mark": MARKS.get(one.get("outcome"), "?"),
            }
        )
    return {"label": row_label(cell), "seeds": found}


def _context(shown: dict[str, Any]) -> dict[str, str]:
    """Evidence shown beside a claim, never judged: the mean over the seeds of each number
    (the first seed's where it is a path or a word)."""
    name = shown["name"]
    head, sep, rest = name.partition(": ")
    name = f"{model_name(head)}{sep}{rest}" if sep else name
    per_seed = [n for n in shown.get("numbers") or [] if n]
    if not per_seed:
        return {"name": arrows(name), "text": "not measured"}
    keys = list(dict.fromkeys(k for n in per_seed for k in n))
    said = []
    for key in keys:
        values = [n.get(key) for n in per_seed if n.get(key) is not None]
        if values and all(isinstance(v, int | float) for v in values):
            mean = sum(values) / len(values)
            decimals = 0 if all(float(v).is_integer() for v in values) else 3
            said.append(f"{key}: {numbers.fixed(mean, decimals)}")
        elif values:
            said.append(f"{key}: {arrows(str(values[0]))}")
    over = f" (mean of {len(per_seed)} seeds)" if len(per_seed) > 1 else ""
    return {"name": arrows(name) + over, "text": "; ".join(said)}
