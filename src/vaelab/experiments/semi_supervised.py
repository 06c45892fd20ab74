"""The semi-supervised study's figure: each method's test error against the labels given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure as MplFigure

FIGURE_FILE = "ssl_error.png"


def error_figure(results: Mapping[str, Any]) -> MplFigure:
    """Mean ± sd over seeds of every method's test error per label count, beside the paper's M2."""
    fig = MplFigure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    counts = results["label_counts"]
    for method, by_n in results["errors"].items():
        means = [100 * by_n[str(n)]["mean"] for n in counts]
        sds = [100 * (by_n[str(n)]["sd"] or 0.0) for n in counts]
        ax.errorbar(counts, means, yerr=sds, marker="o", capsize=3, label=method)
    paper = results["paper_m2_percent"]
    ax.plot([int(n) for n in paper], list(paper.values()), "k*", ms=10, label="M2, Kingma et al.")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images")
    ax.set_ylabel("test error (%), mean ± sd over seeds")
    ax.set_title("Test error against labels given")
    ax.legend(fontsize=8)
    return fig
