"""Each comparison of a claim as a cell of the verdict matrix: which model (or walk, or label
pair) it is about, at which z, and what it measures, read from its name in results.json.

The rules (`vaelab.claims.rules`) name every comparison in words, e.g. "z=4: vae NLL below
the AE's" or "vae: NLL falls from z=4 to z=16". `cell_of` reads such a name into a `Cell`:
the group it belongs to (the model, a walk, a digit given a wrong label), a short family when
a group holds comparisons of two kinds ("sharper", "fewer misreads"), and a short label (the
z, or a step between two z). A name no pattern knows becomes a cell of its own, labelled with
the whole name, so nothing is ever dropped from the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vaelab.report import numbers
from vaelab.report.names import ARROW, model_name

OUTCOMES = ("supports", "contradicts", "equivalent", "inconclusive")
MARKS = {"supports": "✓", "contradicts": "✗", "equivalent": "=", "inconclusive": "?"}


@dataclass(frozen=True)
class Cell:
    name: str  # the comparison's name in results.json
    group: str  # the matrix's tiny header: "VAE", "walk 1 → 0", "4 given 9"
    who: str  # the same in a sentence: "the VAE", "the walks 1 → 0"
    family: str  # what it measures, when its group holds two kinds; else ""
    label: str  # inside the cell: "4", "4→16", "near 0"
    where: str  # in a sentence: "z=4", "z=4→16", "near the origin"
    outcome: str
    title: str = ""  # the comparison with its effect and interval, on hover


# (pattern of a name, group, who, family, label, where); {m}/{o} are models, the rest groups.
PATTERNS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (r"(?P<m>.+): NLL falls from z=(?P<lo>\d+) to z=(?P<hi>\d+)",
     "{M}", "the {M}", "sharper", "{lo}→{hi}", "z={lo}→{hi}"),
    (r"(?P<m>.+): more read as another digit at z=(?P<lo>\d+) than at z=(?P<hi>\d+)",
     "{M}", "the {M}", "fewer misreads", "{lo}→{hi}", "z={lo}→{hi}"),
    (r"z=(?P<z>\d+): (?P<m>.+) NLL below the AE's",
     "{M}", "the {M}", "", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): NLL lower with the true label than with no label",
     "true vs no label", "the true label against none", "", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): NLL lower with the true label than with a wrong label",
     "true vs wrong label", "the true label against a wrong one", "", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): test (?P<d>\d+)s given label (?P<w>\d+) lean toward \d+",
     "{d} given {w}", "the {d}s given label {w}", "leans", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): test (?P<d>\d+)s given label (?P<w>\d+) come back as \d+",
     "{d} given {w}", "the {d}s given label {w}", "label wins", "{z}", "z={z}"),
    (r"(?P<a>\d+) → (?P<b>\d+): more other digits passed at z=(?P<lo>\d+) than at z=(?P<hi>\d+)",
     "walk {a} → {b}", "the walks {a} → {b}", "", "{lo}→{hi}", "z={lo}→{hi}"),
    (r"(?P<m>.+) centre near the origin",
     "{M}", "the {M}", "", "near 0", "near the origin"),
    (r"ae centre farther off the origin than (?P<m>.+)'s",
     "{M}", "the {M}", "", "vs AE", "against the AE"),
    (r"ae separates digits better than (?P<m>.+)",
     "{M}", "the {M}", "", "{shown}", "z={shown}"),
    (r"z=(?P<z>\d+): ae scores higher than (?P<m>.+)",
     "{M}", "the {M}", "", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): (?P<m>.+) scores higher than ae",
     "{M}", "the {M}", "", "{z}", "z={z}"),
    (r"z=(?P<z>\d+): (?P<m>.+) scores higher than (?P<o>.+)",
     "{M} vs {O}", "the {M} against the {O}", "", "{z}", "z={z}"),
)  # fmt: skip


def cell_of(comparison: dict[str, Any], shown_latent: int | None = None) -> Cell:
    """The cell of one comparison (a `Comparison.to_dict()`); `shown_latent` is the z of the
    latent experiment (claims 6's names carry none)."""
    name = comparison["name"]
    outcome = comparison.get("outcome") or "inconclusive"
    title = hover(comparison)
    for pattern, group, who, family, label, where in PATTERNS:
        found = re.fullmatch(pattern, name)
        if found:
            words = found.groupdict() | {"shown": "" if shown_latent is None else shown_latent}
            words["M"] = model_name(words.get("m") or "")
            words["O"] = model_name(words.get("o") or "")
            fill = [t.format(**words) for t in (group, who, family, label, where)]
            return Cell(name, *fill, outcome=outcome, title=title)
    return Cell(name, "", name, "", name, name, outcome, title)


def hover(comparison: dict[str, Any]) -> str:
    """ "VAE NLL − AE NLL = −2.3 nats (−2.9 to −1.8): supports" with the unit's decimals."""
    unit, margin = comparison.get("unit"), comparison.get("margin")
    value = numbers.effect(comparison.get("effect"), unit, margin)
    span = numbers.interval(comparison.get("interval"), unit, margin)
    measure = comparison.get("measure") or comparison["name"]
    return f"{measure} = {value} {unit} ({span}): {comparison.get('outcome')}".replace("->", ARROW)


def claim_cells(claim: dict[str, Any], shown_latent: int | None = None) -> list[Cell]:
    return [cell_of(c, shown_latent) for c in claim["comparisons"]]


def groups(cells: list[Cell]) -> list[dict[str, Any]]:
    """The matrix's blocks of one claim: [{"group", "families": [{"family", "cells"}]}], in
    the order of first appearance; a family's name is kept only where a group has two."""
    found: dict[str, dict[str, list[Cell]]] = {}
    for cell in cells:
        found.setdefault(cell.group, {}).setdefault(cell.family, []).append(cell)
    blocks = []
    for group, families in found.items():
        named = len(families) > 1
        blocks.append(
            {
                "group": group,
                "families": [
                    {"family": family if named else "", "cells": members}
                    for family, members in families.items()
                ],
            }
        )
    return blocks
