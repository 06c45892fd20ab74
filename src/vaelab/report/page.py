"""results + figures -> one self-contained HTML page (images and GIFs inlined, no scripts)."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure as MplFigure

from vaelab.core import fileio
from vaelab.core.folders import FIGURE_DIR
from vaelab.evaluation.evidence import across_seeds, is_summary
from vaelab.experiments.common import save_figure
from vaelab.models.spec import MODEL_KINDS
from vaelab.report.trajectories import trajectories_figure

VERDICT_CLASS = {
    "supported": "holds",
    "contradicted": "fails",
    "parts disagree": "split",
    "inconclusive": "mixed",
    "too few seeds": "mixed",
    "supports": "holds",
    "contradicts": "fails",
    "equivalent": "fails",  # the difference the article predicts is absent
}
MARKS = {"supports": "✓", "contradicts": "✗", "equivalent": "=", "inconclusive": "?"}


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers for people: 3 significant digits, thousands kept whole, lists and dicts compact."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.{digits}g}"
    if is_summary(value):  # a number that differs between seeds: mean ± sd
        if value["mean"] is None:
            return "—"
        sd = "" if value["sd"] is None else f" ± {value['sd']:.2g}"
        return f"{fmt(value['mean'], digits)}{sd}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    return str(value)


def data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def training_figure(training: dict[str, Any]) -> MplFigure:
    """Training loss per epoch, one panel per model kind, one line per latent size (of the
    first seed: the other seeds' curves are alike and would hide each other)."""
    first = min((r.get("seed", 0) for r in training.values()), default=0)
    training = {k: r for k, r in training.items() if r.get("seed", 0) == first}
    kinds = sorted({r["kind"] for r in training.values()}, key=MODEL_KINDS.index)
    fig = MplFigure(figsize=(4 * len(kinds), 3.2))
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
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
        ax.set_title(kind.upper())
        ax.set_xlabel("step (one row per epoch)")
        ax.set_ylabel(
            "training objective (an MSE AE: its own scale)"
            if kind == "ae"
            else "training objective (nats/image)"
        )
        ax.legend()
    fig.suptitle("Training curves")
    return fig


def training_rows(training: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model kind and latent size: its seeds' training, as mean ± sd."""
    groups: dict[tuple[str, int, tuple[Any, ...]], list[dict[str, Any]]] = {}
    for record in training.values():
        point = tuple(record.get("point") or ())  # (C, k) in a sweep, else ()
        point = (record["ae_loss"],) if record.get("ae_loss") else point  # an AE's loss
        groups.setdefault((record["kind"], record["latent"], point), []).append(record)
    rows = []
    for (kind, z, point), records in sorted(
        groups.items(), key=lambda i: (MODEL_KINDS.index(i[0][0]), i[0][1], str(i[0][2]))
    ):
        improving = [r["still_improving"] for r in records if r["still_improving"] is not None]
        rows.append(
            {
                "kind": kind,
                "latent": z,
                "point": _point_text(point),
                "seeds": len(records),
                "epochs": across_seeds([r["epochs"] for r in records]),
                "steps": across_seeds([r.get("steps", r["epochs"]) for r in records]),
                "seconds": across_seeds([r["seconds"] for r in records]),
                "train_loss": across_seeds([r["train_loss"] for r in records]),
                "test_loss": across_seeds([r["test_loss"] for r in records]),
                "still_improving": sum(improving) if improving else None,
                "judged": len(improving),
                "test_error": (
                    across_seeds([r["test_error"] for r in records])
                    if all("test_error" in r for r in records)
                    else None
                ),
                "error_curve": _mean_curve([r.get("error_curve") or [] for r in records]),
                "reused": all(r["reused"] for r in records),
            }
        )
    return rows


def _point_text(point: tuple[Any, ...]) -> str:
    """ "C = 0.1, k = 5" for a point of a sweep, "mse loss" for an AE's loss, else ""."""
    if len(point) == 2:
        return f"C = {point[0]:g}, k = {point[1]}"
    return f"{point[0]} loss" if point else ""


def _mean_curve(curves: list[list[list[float]]]) -> str:
    """ "epoch: mean error" over the seeds, at the epochs every seed was evaluated at."""
    common = set.intersection(*(({e for e, _ in c}) for c in curves)) if curves else set()
    if not common:
        return ""
    means = {e: sum(dict(c)[e] for c in curves) / len(curves) for e in sorted(common)}
    return ", ".join(f"{int(e)}: {v:.1%}" for e, v in means.items())


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Render report.html beside the figures `results["figures"]` names; returns its path."""
    out = path.parent
    curves = save_figure(training_figure(results["training"]), out, "training_curves.png")
    maps = map_figures(results, out)
    env = Environment(
        loader=PackageLoader("vaelab.report", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    figures = {
        name: [inlined(out, f) for f in listed] for name, listed in results["figures"].items()
    }
    html = env.get_template("report.html").render(
        r=results,
        e=results["experiments"],
        figures=figures,
        curves=data_uri(out / curves),
        map_figures={key: data_uri(out / path) for key, path in maps.items()},
        verdict_class=VERDICT_CLASS,
        marks=MARKS,
        training_rows=training_rows(results["training"]),
        rd_rows=rate_distortion_rows(
            results["experiments"].get("rate_distortion", {}).get("rows", [])
        ),
    )
    fileio.write_text(path, html)
    keep = {curves, *maps.values()}
    keep |= {f["path"] for listed in results["figures"].values() for f in listed}
    remove_stale_figures(out, keep)
    return path


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


def rate_distortion_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rate-distortion rows averaged over seeds: one per (kind, z, C, k)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] != "ae":
            key = (row["kind"], row["z"], row["kl_weight"], row["n_samples"])
            groups.setdefault(key, []).append(row)
    shown = []
    for (kind, z, c, k), found in sorted(groups.items()):
        mean = {}
        for field in ("rate", "distortion", "elbo", "iwae", "active_units"):
            values = [r[field] for r in found if r.get(field) is not None]
            mean[field] = sum(values) / len(values) if values else None
        shown.append({"kind": kind, "z": z, "kl_weight": c, "n_samples": k, "seeds": len(found)})
        shown[-1] |= mean
    return shown


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
