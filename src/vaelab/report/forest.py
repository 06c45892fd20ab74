"""A claim's forest plot: every comparison's effect and interval, one axis per unit.

One row per comparison, labelled as the verdict matrix labels its cell (model, what it
measures, z); its interval is a bar and its effect a dot, coloured by outcome, with each
seed's own effect as a faint grey dot. The band of ± the unit's smallest effect of interest
is shaded (an interval inside it: the difference is absent), zero is marked, and the side the
article predicts is written on the plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vaelab.report.cells import Cell, claim_cells, groups
from vaelab.report.trajectories import OUTCOME_COLOURS

ROW_INCHES = 0.24
SIDES = {
    "positive": "the article: > 0 →",
    "negative": "← the article: < 0",
    "near zero": "the article: inside the band",
}
SHORT_SIDES = {"positive": "> 0", "negative": "< 0", "near zero": "≈ 0"}
BOUNDED = ("share", "probability", "accuracy", "V-measure")  # differences lie in [-1, 1]


def row_label(cell: Cell) -> str:
    """ "VAE · z=4", "AE · sharper · z=4→16", "VAE · near the origin"."""
    parts = [cell.group, cell.family, cell.where]
    return " · ".join(p for p in parts if p)


def forest_figure(claim: dict[str, Any], shown_latent: int | None = None) -> MplFigure:
    """The forest plot of one claim (a `Claim.to_dict()` with at least one comparison)."""
    cells = claim_cells(claim, shown_latent)
    order = [
        cells.index(c) for block in groups(cells) for f in block["families"] for c in f["cells"]
    ]
    comparisons = [claim["comparisons"][i] for i in order]
    cells = [cells[i] for i in order]
    units = list(dict.fromkeys(c["unit"] for c in comparisons))
    rows = [[i for i, c in enumerate(comparisons) if c["unit"] == u] for u in units]
    heights = [len(r) * ROW_INCHES + 0.75 for r in rows]
    fig = MplFigure(figsize=(7.6, sum(heights) + 0.5), layout="constrained")
    axes = fig.subplots(len(units), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, unit, members in zip(axes, units, rows, strict=True):
        _panel(ax, [comparisons[i] for i in members], [cells[i] for i in members], unit)
    level = claim.get("level")
    joint = "" if level is None else f"; each interval {100 * level:.1f}%, jointly 95%"
    fig.suptitle(f"Claim {claim['number']}: each comparison's effect{joint}", fontsize=10)
    _legend(fig)
    return fig


def _panel(ax: Axes, comparisons: list[dict[str, Any]], cells: list[Cell], unit: str) -> None:
    margin = max((c.get("margin") or 0.0) for c in comparisons)
    ys = np.arange(len(comparisons))[::-1]  # the first comparison at the top
    if margin:
        ax.axvspan(-margin, margin, color="#e6e6e6", zorder=0)
    ax.axvline(0.0, color="black", linewidth=0.8, zorder=1)
    reach = [margin]
    for y, c in zip(ys, comparisons, strict=True):
        colour = OUTCOME_COLOURS.get(c.get("outcome"), "black")
        seeds = [s["effect"] for s in c.get("per_seed") or [] if s and s.get("effect") is not None]
        ax.scatter(seeds, [y + 0.25] * len(seeds), s=8, color="#757575", alpha=0.5, zorder=2, lw=0)
        low, high = c["interval"]
        ax.plot([low, high], [y, y], color=colour, linewidth=2.2, zorder=3)
        ax.plot(c["effect"], y, "o", color=colour, markersize=5, zorder=4)
        reach += [abs(low), abs(high), *(abs(s) for s in seeds)]
    width = 1.08 * max(reach) or 1.0
    width = min(width, 1.0) if unit in BOUNDED else width  # a longer interval runs off the edge
    ax.set_xlim(-width, width)
    ax.set_ylim(-0.7, len(comparisons) - 0.3)
    ax.set_yticks(ys, [row_label(cell) for cell in cells], fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    band = f"; grey band: ±{margin:g}, no difference that matters" if margin else ""
    ax.set_xlabel(f"effect in {unit}{band}", fontsize=8)
    ax.grid(axis="x", alpha=0.25)
    _sides(ax, comparisons, ys)


def _sides(ax: Axes, comparisons: list[dict[str, Any]], ys: np.ndarray) -> None:
    """The article's side: once on the panel when every row shares it, else per row."""
    expects = [c.get("expect") or "positive" for c in comparisons]
    if len(set(expects)) == 1:
        where = {"positive": (0.99, "right"), "negative": (0.01, "left")}
        x, align = where.get(expects[0], (0.5, "center"))
        ax.text(
            x,
            1.02,
            SIDES.get(expects[0], ""),
            transform=ax.transAxes,
            ha=align,
            va="bottom",
            fontsize=8,
            color="#333333",
        )
        return
    for y, expect in zip(ys, expects, strict=True):
        ax.text(
            1.01,
            y,
            f"article {SHORT_SIDES.get(expect, '')}",
            fontsize=7,
            transform=ax.get_yaxis_transform(),
            va="center",
            color="#333333",
        )


def _legend(fig: MplFigure) -> None:
    handles: list[Any] = [
        Line2D([], [], color=c, marker="o", linewidth=2.2, label=o)
        for o, c in OUTCOME_COLOURS.items()
    ]
    handles.append(Line2D([], [], color="#9e9e9e", marker="o", linestyle="", label="one seed"))
    handles.append(Patch(color="#e6e6e6", label="± margin"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7)
