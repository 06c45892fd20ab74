"""The claims maps as trajectories: each comparison's effect and interval across the columns.

A map (`vaelab.claims.maps`) holds, per claim and column, every comparison's effect, interval,
outcome and margin. `trajectories_figure` draws one panel per claim: each comparison's effect
over the columns, in units of its margin and signed so that the article's prediction points
up (a value predicted near zero is drawn as it is), with its interval as a bar and its outcome
as the marker's colour; the band of ±1 margin is where a difference counts as absent, and the
judged column is shaded. `claim_trajectories` draws one claim's comparisons in their own units.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

OUTCOME_COLOURS = {
    "supports": "#2e7d32",
    "contradicts": "#c62828",
    "equivalent": "#6a1b9a",
    "inconclusive": "#9e9e9e",
}
SIGN = {"positive": 1.0, "negative": -1.0, "near zero": 1.0}


def _series(found: dict[str, Any], number: str) -> dict[str, list[dict[str, Any] | None]]:
    """{comparison name: [its effect entry per column, None where not judged]}."""
    columns = found["effects"].get(number, [])
    names = list(dict.fromkeys(n for column in columns for n in column))
    return {n: [column.get(n) for column in columns] for n in names}


def _scaled(entry: dict[str, Any]) -> tuple[float, float, float]:
    """(effect, low, high) in margins, the article's predicted sign pointing up."""
    sign = SIGN.get(entry.get("expect") or "positive", 1.0)
    margin = entry.get("margin") or 1.0
    low, high = (sign * v / margin for v in entry["interval"])
    return sign * entry["effect"] / margin, min(low, high), max(low, high)


def _mark_judged(ax: Axes, found: dict[str, Any]) -> None:
    judged = found.get("judged")
    if judged is not None:
        ax.axvspan(judged - 0.45, judged + 0.45, color="#ffd54f", alpha=0.3, zorder=1)


def _draw(
    ax: Axes, series: dict[str, list[dict[str, Any] | None]], scale: bool, symlog: bool
) -> None:
    """One line per comparison, dodged sideways, with interval bars and outcome colours."""
    count = max(len(series), 1)
    for i, entries in enumerate(series.values()):
        dodge = 0.5 * (i / count - 0.5) if count > 1 else 0.0
        xs, ys = [], []
        for x, entry in enumerate(entries):
            if entry is None or entry.get("effect") is None:
                continue
            mid, low, high = _scaled(entry) if scale else (entry["effect"], *entry["interval"])
            colour = OUTCOME_COLOURS.get(entry.get("outcome"), "#000000")
            ax.plot([x + dodge] * 2, [low, high], color=colour, linewidth=1.2, alpha=0.8)
            ax.plot(x + dodge, mid, "o", color=colour, markersize=3.5)
            xs.append(x + dodge)
            ys.append(mid)
        ax.plot(xs, ys, color="#555555", linewidth=0.6, alpha=0.6)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if symlog:
        ax.set_yscale("symlog", linthresh=1.0)


def _columns_axis(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _legend(fig: MplFigure) -> None:
    handles = [
        Line2D([], [], color=c, marker="o", linestyle="-", label=o)
        for o, c in OUTCOME_COLOURS.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)


def trajectories_figure(found: dict[str, Any], labels: Sequence[str], title: str) -> MplFigure:
    """One panel per claim; each comparison's effect in units of its margin over the columns
    named by `labels` (the article's prediction up; the grey band: within ±1 margin)."""
    numbers = sorted(found["effects"], key=int)
    cols = min(4, max(1, len(numbers)))
    rows = max(1, math.ceil(len(numbers) / cols))
    fig = MplFigure(figsize=(3.3 * cols, 2.8 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, number in zip(axes, numbers, strict=False):
        ax.axhspan(-1.0, 1.0, color="#e0e0e0", zorder=0)
        _mark_judged(ax, found)
        _draw(ax, _series(found, number), scale=True, symlog=True)
        verdicts = found["verdicts"].get(number, [])
        judged = found.get("judged")
        final = verdicts[judged] if judged is not None and judged < len(verdicts) else None
        ax.set_title(f"claim {number}" + (f": {final}" if final else ""), fontsize=9)
        ax.set_ylabel("effect / margin", fontsize=8)
        _columns_axis(ax, labels)
    for ax in axes[len(numbers) :]:
        ax.set_visible(False)
    _legend(fig)
    fig.suptitle(title, fontsize=10)
    return fig


def claim_trajectories(
    found: dict[str, Any], number: int | str, labels: Sequence[str], title: str
) -> MplFigure:
    """One panel per comparison of one claim, in its own unit, with the ±margin band."""
    series = _series(found, str(number))
    cols = min(4, max(1, len(series)))
    rows = max(1, math.ceil(len(series) / cols))
    fig = MplFigure(figsize=(3.0 * cols, 2.5 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, (name, entries) in zip(axes, series.items(), strict=False):
        first = next((e for e in entries if e is not None), {})
        margin = first.get("margin") or 0.0
        if margin:
            ax.axhspan(-margin, margin, color="#e0e0e0", zorder=0)
        _mark_judged(ax, found)
        _draw(ax, {name: entries}, scale=False, symlog=False)
        ax.set_title(textwrap.fill(name, 36), fontsize=8)
        ax.set_ylabel(first.get("unit") or "", fontsize=8)
        _columns_axis(ax, labels)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    _legend(fig)
    fig.suptitle(title, fontsize=10)
    return fig
