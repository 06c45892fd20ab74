"""results + figures -> one self-contained HTML page (images and GIFs inlined, no scripts).

The page opens on the verdicts: a title, one line on what was run and how far to trust it,
and the eight claims as a matrix of their comparisons' outcomes with a plain sentence each.
Each claim then has its own section beside its evidence: a forest plot of its comparisons,
the figure the article judged it by, a short table and each seed's effects folded away. A
figure that backs several claims is inlined once, as a CSS class each of them draws.
"""

from __future__ import annotations

import base64
import dataclasses
import mimetypes
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure as MplFigure
from PIL import Image

from vaelab.core import fileio
from vaelab.core.config import ModelConfig, from_dict
from vaelab.core.folders import FIGURE_DIR
from vaelab.experiments.common import save_figure
from vaelab.models import kinds
from vaelab.report import numbers
from vaelab.report.claim_view import OUTCOME_CLASS, VERDICT_CLASS
from vaelab.report.forest import forest_figure
from vaelab.report.names import ae_loss_name, model_name, walk_name
from vaelab.report.trajectories import trajectories_figure
from vaelab.report.view import SHARED, page_view


def data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def training_figure(training: dict[str, Any]) -> MplFigure:
    """Training loss per epoch, one panel per model kind, one line per latent size (of the
    first seed: the other seeds' curves are alike and would hide each other)."""
    first = min((r.get("seed", 0) for r in training.values()), default=0)
    training = {k: r for k, r in training.items() if r.get("seed", 0) == first}
    present = sorted({r["kind"] for r in training.values()}, key=kinds.names().index)
    fig = MplFigure(figsize=(4 * len(present), 3.2))
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, kind in zip(axes, present, strict=True):
        for record in training.values():
            if record.get("variant"):  # an AE trained the other way: another scale
                continue
            if record["kind"] == kind and record["loss_curve"]:
                curve = record["loss_curve"]
                ax.plot(
                    record.get("curve_steps") or range(1, len(curve) + 1),
                    curve,
                    marker="." if len(curve) < 30 else None,
                    label=f"z = {record['latent']}",
                )
        ax.set_title(kinds.record(kind).title)
        ax.set_xlabel("step (one row per epoch)")
        ax.set_ylabel(
            "training objective (an MSE AE: its own scale)"
            if kind in kinds.names() and kinds.record(kind).role == "ae"
            else "training objective (nats/image)"
        )
        ax.legend()
    fig.suptitle("Training curves")
    return fig


def model_lines(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Each architecture of the study's models in words, from its kind's record: (the kinds
    it describes, e.g. "AE, VAE"; the description), in the registry's order."""
    model = from_dict(ModelConfig, config["model"])
    lines: dict[str, list[str]] = {}
    for name in sorted(config["models"], key=kinds.names().index):
        line = kinds.record(name).describe(dataclasses.replace(model, kind=name))
        lines.setdefault(line, []).append(model_name(name))
    return [(", ".join(names), line) for line, names in lines.items()]


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Render report.html beside the figures `results["figures"]` names; returns its path."""
    out = path.parent
    curves = save_figure(training_figure(results["training"]), out, "training_curves.png")
    maps = map_figures(results, out)
    forests = forest_figures(results, out)
    figures = {
        name: [inlined(out, f) for f in listed] for name, listed in results["figures"].items()
    }
    backing = {name: figures.get(name, []) for name in SHARED}
    view = page_view(results, figures)
    view["models"] = model_lines(results["config"])
    view["maps"] = {key: data_uri(out / p) for key, p in maps.items()}
    view["forests"] = {n: data_uri(out / p) for n, p in forests.items()}
    html = (
        environment()
        .get_template("report.html")
        .render(
            r=results,
            e=results["experiments"],
            v=view,
            figures=figures,
            backing=backing,
            shared=shared_images(out, [f for listed in backing.values() for f in listed]),
            curves=data_uri(out / curves),
        )
    )
    fileio.write_text(path, html)
    keep = {curves, *maps.values(), *forests.values()}
    keep |= {f["path"] for listed in results["figures"].values() for f in listed}
    remove_stale_figures(out, keep)
    return path


def environment() -> Environment:
    """The templates with the page's number formats and names."""
    env = Environment(
        loader=PackageLoader("vaelab.report", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {"sig": numbers.sig, "fixed": numbers.fixed, "summary": numbers.summary}
    env.globals |= {
        "model_name": model_name,
        "ae_loss_name": ae_loss_name,
        "walk_name": walk_name,
        "verdict_class": VERDICT_CLASS,
        "outcome_class": OUTCOME_CLASS,
    }
    return env


def forest_figures(results: dict[str, Any], out: Path) -> dict[int, str]:
    """Each measured claim's forest plot: {claim number: path}."""
    shown = results["config"].get("experiments", {}).get("plot_latent")
    return {
        c["number"]: save_figure(forest_figure(c, shown), out, f"forest_claim{c['number']}.png")
        for c in results["claims"]
        if c["comparisons"]
    }


def shared_images(out: Path, figures: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """The figures that back claims, each inlined once as a CSS class that every claim it
    backs draws: {file: {"cls", "uri", "width", "height"}}."""
    found = {}
    for i, f in enumerate(dict((f["file"], f) for f in figures).values()):
        with Image.open(out / f["file"]) as image:
            width, height = image.size
        found[f["file"]] = {"cls": f"fig{i}", "uri": f["src"], "width": width, "height": height}
    return found


def map_figures(results: dict[str, Any], out: Path) -> dict[str, str]:
    """The trajectory figure of each claims map with more than one column: {map: path}."""
    found = {}
    cot, cos = results.get("claims_over_training"), results.get("claims_over_settings")
    if cot and cot.get("effects") and len(cot.get("steps", cot.get("epochs", []))) > 1:
        labels = cot.get("labels") or [f"epoch {e}" for e in cot["epochs"]]
        fig = trajectories_figure(cot, labels, "Each comparison over training")
        found["training"] = save_figure(fig, out, "claims_over_training.png")
    if cos and cos.get("effects") and len(cos.get("points", [])) > 1:
        labels = [f"C = {p['kl_weight']:g}, k = {p['n_samples']}" for p in cos["points"]]
        fig = trajectories_figure(cos, labels, "Each comparison at every C and k")
        found["settings"] = save_figure(fig, out, "claims_over_settings.png")
    return found


def inlined(out: Path, figure: dict[str, str]) -> dict[str, str]:
    """A figure as the template shows it: title, caption, the image as a data URI."""
    return {
        "title": figure["title"],
        "caption": figure["caption"],
        "src": data_uri(out / figure["path"]),
        "file": figure["path"],
    }


def remove_stale_figures(out: Path, keep: set[str]) -> list[str]:
    """Delete files under out/figures/ that this report does not show (earlier settings')."""
    folder = out / FIGURE_DIR
    removed = []
    for file in sorted(folder.glob("*")) if folder.is_dir() else []:
        relative = file.relative_to(out).as_posix()
        if file.is_file() and relative not in keep:
            file.unlink()
            removed.append(relative)
    return removed
