"""One plain sentence per claim for a reader, written from its comparisons' outcomes.

The sentence says where the claim holds, where the opposite was found, where the difference
the article predicts is absent and where nothing was decided, naming models (or walks, or
labels) and z, never measures: "Holds for the VAE and the CVAE (no label) at z=16 and 64; the
opposite for the CVAE (no label) at z=4; undecided elsewhere." Comparisons with one outcome
are gathered per model; a model whose every comparison shares the outcome is named alone, and
models with the same places are named together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaelab.report.cells import OUTCOMES, Cell, claim_cells

LEADS = {
    "supports": "holds for",
    "contradicts": "the opposite for",
    "equivalent": "no difference for",
    "inconclusive": "undecided for",
}
FAMILIES = {  # a family of comparisons as a sentence names it
    "sharper": "sharpness of",
    "fewer misreads": "misreads of",
    "leans": "the lean of",
    "label wins": "the label winning over",
}
THROUGHOUT = {
    "supports": "Holds throughout",
    "contradicts": "The opposite throughout",
    "equivalent": "No difference throughout, where the article predicts one",
    "inconclusive": "Undecided throughout",
}


def plain_sentence(claim: dict[str, Any], shown_latent: int | None = None) -> str:
    """The sentence for one claim (a `Claim.to_dict()`)."""
    verdict = claim.get("verdict")
    if not claim.get("comparisons"):
        return "Not measured: this run lacks the numbers its rule needs."
    if verdict == "too few seeds":
        n = claim.get("seeds_measured") or 1
        return (
            f"Too few seeds to decide: measured in {n} seed{'s' * (n != 1)}; "
            "each seed's effects are below."
        )
    return sentence(claim_cells(claim, shown_latent))


def sentence(cells: Sequence[Cell]) -> str:
    """Where each outcome was found, outcome by outcome, as one sentence."""
    present = [o for o in OUTCOMES if any(c.outcome == o for c in cells)]
    if len(present) == 1:
        return f"{THROUGHOUT[present[0]]}: {_and(list(dict.fromkeys(c.who for c in cells)))}."
    parts = []
    for outcome in present:
        if outcome == "inconclusive" and parts:
            parts.append("undecided elsewhere")
            continue
        found = [c for c in cells if c.outcome == outcome]
        parts.append(f"{LEADS[outcome]} {_places(found, cells)}")
    text = "; ".join(parts)
    return f"{text[0].upper()}{text[1:]}."


def _places(found: Sequence[Cell], cells: Sequence[Cell]) -> str:
    """ "the VAE throughout and for the CVAE (no label) at z=16 and 64": who is named with
    where, those with the same places together; "throughout" marks a model whose every
    comparison is here when another one's places are named."""
    by_who: dict[str, str] = {}
    for who in dict.fromkeys(_who(c, cells) for c in found):
        mine = [c.where for c in found if _who(c, cells) == who]
        every = [c for c in cells if _who(c, cells) == who]
        by_who[who] = "" if len(mine) == len(every) else _at(mine)
    same: dict[str, list[str]] = {}
    for who, where in by_who.items():
        same.setdefault(where, []).append(who)
    phrases = []
    for where, whos in same.items():
        shown = "throughout" if not where and len(same) > 1 else where
        phrases.append(f"{_and(whos)} {shown}".strip())
    return _and([phrases[0]] + [f"for {p}" for p in phrases[1:]])


def _who(cell: Cell, cells: Sequence[Cell]) -> str:
    """Who a comparison is about, with what it measures where its group measures two things:
    "the VAE", "misreads of the AE"."""
    if not cell.family or all(c.family == cell.family for c in cells if c.group == cell.group):
        return cell.who
    return f"{FAMILIES.get(cell.family, cell.family + ' of')} {cell.who}"


def _at(wheres: Sequence[str]) -> str:
    """ "at z=4, 16 and 64"; "near the origin"; "at z=4→16 and 16→64"."""
    if all(w.startswith("z=") for w in wheres):
        return "at z=" + _and([w[2:] for w in wheres])
    if len(wheres) == 1 and not wheres[0].startswith("z="):
        return wheres[0]
    return _and(list(wheres))


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
