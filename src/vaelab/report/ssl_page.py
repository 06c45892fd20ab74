"""report.html of the semi-supervised study: test error against labels given, per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from vaelab.core import fileio
from vaelab.report.page import inlined

CURVE_DIGITS = 1  # test error by epoch, in percent
NAMES = {  # each method as the page names it, models named as in the article's report
    "M2": "M2's q(y|x)",
    "labelled only": "q(y|x)'s network on the labels alone",
    "CVAE + kNN": "CVAE (no label) codes + 5-NN",
    "CVAE + k-means": "CVAE (no label) codes + k-means",
    "paper": "M2, Kingma et al. (2014)",
}


def error_by_epoch(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per label count: M2's test error at each evaluated epoch, mean over the seeds (%), and
    how much it fell over the last epoch (positive: still falling)."""
    rows = []
    for n in results["label_counts"]:
        curves = [c for key, c in results["m2_test_error_by_epoch"].items()
                  if key.startswith(f"n{n}-")]  # fmt: skip
        epochs = sorted(set.intersection(*({r["epoch"] for r in c} for c in curves)) or ())
        if not curves or not epochs:
            continue
        means = [
            100
            * sum(next(r["test_error"] for r in c if r["epoch"] == e) for c in curves)
            / len(curves)
            for e in epochs
        ]
        rows.append(
            {
                "labels": n,
                "epochs": epochs,
                "means": [round(m, CURVE_DIGITS) for m in means],
                "last_fall": means[-2] - means[-1] if len(means) > 1 else None,
            }
        )
    return rows


def write_ssl_report(results: dict[str, Any], path: Path) -> Path:
    """Render the semi-supervised study's report.html beside its figure; returns its path."""
    env = Environment(
        loader=PackageLoader("vaelab.report", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    figures = [inlined(path.parent, f) for f in results["figures"]["ssl"]]
    html = env.get_template("ssl.html").render(
        r=results, figures=figures, curves=error_by_epoch(results), names=NAMES
    )
    fileio.write_text(path, html)
    return path
