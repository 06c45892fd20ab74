"""The article's regime beside convergence, and the claims judged again on other images or
with the AE trained the other way: each as a table of verdicts with plain sentences in the
page's names and numbers."""

from __future__ import annotations

from typing import Any

from vaelab.report import numbers
from vaelab.report.cells import cell_of
from vaelab.report.forest import row_label
from vaelab.report.names import ARROW, ae_loss_name

IMAGES = {"test": "test images", "train": "training images"}


def judged_again(results: dict[str, Any]) -> dict[str, Any] | None:
    """The headline verdicts beside those on other images and with the AE trained the other
    way: {"columns": [label], "rows": [{"claim", "cells": [verdict]}], "notes": [sentence]}."""
    sets, said = [], []
    evaluation = results.get("evaluation") or {}
    for name, entry in (evaluation.get("sets") or {}).items():
        if name != evaluation.get("headline"):
            sets.append((f"on {IMAGES.get(name, name)}", entry))
            said.append(f"on {entry.get('images') or IMAGES.get(name, name)}")
    losses = results.get("ae_losses") or {}
    for loss, entry in (losses.get("sets") or {}).items():
        if loss != losses.get("headline"):
            sets.append((f"the AE on {ae_loss_name(loss)}", entry))
            said.append(f"with the AE trained on {ae_loss_name(loss)}")
    families = results.get("families") or {}
    for family, entry in (families.get("sets") or {}).items():
        if family != families.get("headline"):
            sets.append((f"the {family} models", entry))
            said.append(
                f"on the {family} family's models, each read as the article's model it plays"
            )
    if not sets:
        return None
    head = "as above"
    columns = [head] + [label for label, _ in sets]
    rows = []
    for claim in results["claims"]:
        cells = [claim["verdict"]]
        for _, entry in sets:
            other = next(
                (c for c in entry.get("claims") or [] if c["number"] == claim["number"]), None
            )
            cells.append(other["verdict"] if other else None)
        rows.append({"claim": claim["number"], "cells": cells})
    notes = [
        f"Judged again {words}: {changes_sentence(entry.get('changes') or {}, results)}"
        for words, (_, entry) in zip(said, sets, strict=True)
    ]
    return {"columns": columns, "rows": rows, "notes": notes}


def changes_sentence(changes: dict[str, Any], results: dict[str, Any]) -> str:
    """What a second judgement changes, in the page's names and numbers."""
    verdicts, outcomes = changes.get("verdicts") or [], changes.get("outcomes") or []
    if not verdicts and not outcomes:
        said = "no verdict and no comparison's outcome changes"
    else:
        moved = ", ".join(f"claim {v['claim']} {v['from']} {ARROW} {v['to']}" for v in verdicts)
        n = len(outcomes)
        said = (
            f"{moved or 'no verdict changes'}; {n} comparison{'s' * (n != 1)} "
            f"change{'s' * (n == 1)} outcome"
        )
    largest = changes.get("largest_effect_change")
    if largest:
        label = _comparison_label(results, largest["claim"], largest["comparison"])
        unit = largest.get("unit")
        said += (
            f"; the effect that moves most: claim {largest['claim']}, {label}, "
            f"{numbers.effect(largest['from'], unit)} {ARROW} "
            f"{numbers.effect(largest['to'], unit)} {unit}"
        )
    return said + "."


def _comparison_label(results: dict[str, Any], number: int, name: str) -> str:
    shown = (results.get("config") or {}).get("experiments", {}).get("plot_latent")
    return row_label(cell_of({"name": name, "outcome": "inconclusive"}, shown))


def regime_view(results: dict[str, Any]) -> dict[str, Any] | None:
    """results["regimes"] as the page shows it: each cell's verdict and deciding effect in the
    page's names and the unit's fixed point."""
    regimes = results.get("regimes")
    if not regimes or not regimes.get("available"):
        return regimes
    rows = []
    for row in regimes["rows"]:
        cells = []
        for cell in row["cells"]:
            deciding = cell.get("deciding") or {}
            unit = deciding.get("unit")
            cells.append(
                {
                    "verdict": cell.get("verdict"),
                    "deciding": _comparison_label(results, row["claim"], deciding["name"])
                    if deciding
                    else "",
                    "effect": f"{numbers.effect(deciding.get('effect'), unit)} {unit}"
                    if deciding
                    else "",
                }
            )
        sentence = regime_sentence(regimes["columns"], row["cells"])
        rows.append({"claim": row["claim"], "cells": cells, "sentence": sentence})
    return regimes | {"rows": rows}


def regime_sentence(columns: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    """One plain sentence per claim: at the article's length and at convergence, with the
    headline AE, then with any other AE whose reading differs."""
    by_loss: dict[Any, dict[bool, str | None]] = {}
    for column, cell in zip(columns, cells, strict=True):
        by_loss.setdefault(column.get("ae_loss"), {})[bool(column.get("short"))] = cell["verdict"]
    said: list[str] = []
    for loss, verdicts in by_loss.items():
        text = at_both(verdicts.get(True), verdicts.get(False))
        if not said:
            said.append(text)
        elif text != said[0]:
            said.append(f"with the AE on {ae_loss_name(loss)}: {text}")
    text = "; ".join(said)
    return f"{text[0].upper()}{text[1:]}."


def at_both(short: str | None, converged: str | None) -> str:
    """ "holds at both", "holds only after the article's short training", ..."""
    if short is None or converged is None:
        return f"{short or converged or 'not measured'} (the other length is missing)"
    if short == converged:
        return {"supported": "holds at both", "contradicted": "fails at both"}.get(
            short, f"{short} at both"
        )
    if short == "supported":
        return f"holds only after the article's short training ({converged} at convergence)"
    if converged == "supported":
        return f"holds only at convergence ({short} after the article's training)"
    return f"{short} after the article's training, {converged} at convergence"
