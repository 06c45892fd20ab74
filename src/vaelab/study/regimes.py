"""Which claims are about the article's short training: each claim's verdict and deciding
effect after the article's 1000 steps beside the same at convergence, with either AE loss.

The article trained each model for 1000 minibatches. A study of that length names, in
`converged_study`, a study of the same models trained to convergence (the `converged` preset
for the `article` one); where that study's results.json exists, one table holds each claim's
verdict at both lengths, with the AE on each loss both studies trained, and one plain sentence
per claim. A study that trained past 1000 steps builds the same table from its own map of the
claims over training, whose column at step 1000 is the article's point (its headline AE only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vaelab.core.config import ARTICLE_STEPS, StudyConfig
from vaelab.core.folders import StudyFolder

SUPPORTED, CONTRADICTED = "supported", "contradicted"
AGAINST = ("contradicts", "equivalent")  # outcomes that count against the article


def converged_path(cfg: StudyConfig, out: Path) -> Path | None:
    """The converged study's folder: as given, or beside this study's when relative."""
    if cfg.converged_study is None:
        return None
    path = Path(cfg.converged_study).expanduser()
    return path if path.is_absolute() else Path(out).resolve().parent / path


def regime_table(cfg: StudyConfig, out: Path, results: dict[str, Any]) -> dict[str, Any] | None:
    """results.json's `regimes`: the table, or where the converged study would go and how to
    make it; None for a study that neither names one nor trained past the article's point."""
    path = converged_path(cfg, out)
    if path is None:
        return _own_table(results)
    found = StudyFolder(path).results
    try:
        converged = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {
            "converged_study": str(path),
            "available": False,
            "how": (
                f"train the same models to convergence with `vaelab study --preset converged "
                f"--out {path}`, then run this study again: it then tables each claim's "
                "verdict after the article's training beside its verdict at convergence"
            ),
        }
    columns = _sets(results, "after the article's training") + _sets(converged, "at convergence")
    table = _table(results["claims"], columns)
    return {"converged_study": str(path), "available": True} | table


def _own_table(results: dict[str, Any]) -> dict[str, Any] | None:
    """A converged study's own table: its map's column at step 1000 beside its last."""
    over = results.get("claims_over_training") or {}
    column = over.get("article_column")
    if column is None or column == len(over.get("steps", [])) - 1:
        return None
    short = [
        {
            "number": claim["number"],
            "verdict": over["verdicts"][str(claim["number"])][column],
            "comparisons": _column(over, claim, column),
        }
        for claim in results["claims"]
    ]
    loss = (results.get("ae_losses") or {}).get("headline")
    length = f"{ARTICLE_STEPS} steps"
    columns = [
        {"label": f"{length}{_loss(loss)}", "ae_loss": loss, "short": True, "claims": short},
        {"label": f"at convergence{_loss(loss)}", "ae_loss": loss, "short": False,
         "claims": results["claims"]},
    ]  # fmt: skip
    return {"converged_study": None, "available": True} | _table(results["claims"], columns)


def _column(over: dict[str, Any], claim: dict[str, Any], column: int) -> list[dict[str, Any]]:
    units = {c["name"]: c["unit"] for c in claim["comparisons"]}
    effects = over.get("effects", {}).get(str(claim["number"]), [])
    outcomes = over["comparisons"][str(claim["number"])][column]
    found = effects[column] if column < len(effects) else {}
    return [
        {
            "name": name,
            "outcome": outcome,
            "effect": (found.get(name) or {}).get("effect"),
            "interval": (found.get(name) or {}).get("interval"),
            "unit": units.get(name, ""),
        }
        for name, outcome in outcomes.items()
    ]


def _sets(results: dict[str, Any], when: str) -> list[dict[str, Any]]:
    """One column per AE loss of a study: its headline claims, then each other loss's."""
    losses = results.get("ae_losses") or {}
    headline, short = losses.get("headline"), when.startswith("after")
    sets = {headline: results["claims"]} | {
        loss: entry["claims"]
        for loss, entry in (losses.get("sets") or {}).items()
        if loss != headline
    }
    return [
        {"label": f"{when}{_loss(loss)}", "ae_loss": loss, "short": short, "claims": claims}
        for loss, claims in sets.items()
    ]


def _loss(loss: str | None) -> str:
    return "" if loss is None else f", AE on {'the MSE' if loss == 'mse' else 'the Bernoulli NLL'}"


def _table(claims: list[dict[str, Any]], columns: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for claim in claims:
        cells = [_cell(_find(c["claims"], claim["number"])) for c in columns]
        rows.append(
            {
                "claim": claim["number"],
                "text": claim["text"],
                "cells": cells,
                "sentence": _sentences(columns, cells),
            }
        )
    heads = [{k: v for k, v in c.items() if k != "claims"} for c in columns]
    return {"columns": heads, "rows": rows}


def _find(claims: list[dict[str, Any]], number: int) -> dict[str, Any] | None:
    return next((c for c in claims if c["number"] == number), None)


def _cell(claim: dict[str, Any] | None) -> dict[str, Any]:
    if claim is None:
        return {"verdict": None, "deciding": None}
    return {"verdict": claim["verdict"], "deciding": deciding(claim)}


def deciding(claim: dict[str, Any]) -> dict[str, Any] | None:
    """The comparison that decided a claim's verdict: its closest call when supported, its
    strongest contradiction when contradicted or split, else its most undecided one."""
    found = [c for c in claim["comparisons"] if c.get("interval") and c.get("effect") is not None]
    if not found:
        return None
    verdict = claim["verdict"]
    against = [c for c in found if c["outcome"] in AGAINST]
    if verdict == SUPPORTED:
        pick = min(found, key=_margin)
    elif against and verdict in (CONTRADICTED, "parts disagree"):
        pick = max(against, key=_margin)
    else:
        undecided = [c for c in found if c["outcome"] == "inconclusive"] or found
        pick = min(undecided, key=lambda c: abs(c["effect"]) / _width(c))
    keep = ("name", "effect", "interval", "unit", "outcome")
    return {k: pick.get(k) for k in keep}


def _width(c: dict[str, Any]) -> float:
    return max(c["interval"][1] - c["interval"][0], 1e-12)


def _margin(c: dict[str, Any]) -> float:
    return min(abs(c["interval"][0]), abs(c["interval"][1])) / _width(c)


def _sentences(columns: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    """One plain sentence per claim: the headline AE's, and any other AE's that differs."""
    by_loss: dict[Any, dict[bool, str | None]] = {}
    for column, cell in zip(columns, cells, strict=True):
        by_loss.setdefault(column["ae_loss"], {})[column["short"]] = cell["verdict"]
    said = []
    for i, (loss, verdicts) in enumerate(by_loss.items()):
        text = sentence(verdicts.get(True), verdicts.get(False))
        if i == 0:
            said.append(text)
        elif text != said[0]:
            name = "the MSE" if loss == "mse" else "the Bernoulli NLL"
            said.append(f"with the AE on {name}: {text}")
    text = "; ".join(said)
    return f"{text[:1].upper()}{text[1:]}."


def sentence(short: str | None, converged: str | None) -> str:
    """ "holds at both", "holds only after the article's short training", ..."""
    if short is None or converged is None:
        return f"{short or converged or 'not measured'} (the other length is missing)"
    if short == SUPPORTED and converged == SUPPORTED:
        return "holds at both"
    if short == SUPPORTED:
        return f"holds only after the article's short training ({converged} at convergence)"
    if converged == SUPPORTED:
        return f"holds only at convergence ({short} after the article's training)"
    if short == CONTRADICTED and converged == CONTRADICTED:
        return "fails at both"
    if short == converged:
        return f"{short} at both"
    return f"{short} after the article's training, {converged} at convergence"
