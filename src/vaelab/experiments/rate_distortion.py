"""The rate-distortion plane: where each VAE and CVAE sits for its KL weight C and samples k.

Rate is the mean KL(q(z|x) || p(z)) and distortion the mean reconstruction NLL under q, both
in nats per test image; their sum is minus the ELBO (at C = 1), so lines of slope -1 are lines
of equal ELBO. The numbers are the reconstruction experiment's (`measure_bounds`), gathered
here over every (C, k) point and seed of a study; nothing is computed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from vaelab.core.config import ExperimentConfig
from vaelab.experiments.common import Figure, save_figure
from vaelab.models import kinds

MODES = {"vae": "vae", "cvae": "cvae (true label)"}  # each kind's row of the bounds table
FIELDS = ("rate", "distortion", "elbo", "iwae", "elbo_on_iwae_images", "active_units")

Point = tuple[float, int]


def rows(numbers: Mapping[Point, Mapping[int, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (point, seed, kind, z): rate, distortion, ELBO, IWAE and active units; and
    the AE's reconstruction NLL per z and seed (kind "ae", no rate). `numbers` is
    {point: {seed: {experiment: numbers}}}."""
    found = []
    for (c, k), by_seed in numbers.items():
        for seed, experiments in by_seed.items():
            table = (experiments.get("reconstruction") or {}).get("table", {})
            for kind, mode in MODES.items():
                for z, measures in table.get(mode, {}).items():
                    if "rate" in measures:
                        row = {"kl_weight": c, "n_samples": k, "seed": seed, "kind": kind}
                        found.append(row | {"z": int(z)} | {f: measures.get(f) for f in FIELDS})
            for z, measures in table.get("ae", {}).items():
                if (c, k) == next(iter(numbers)):  # the AE has no C or k: once
                    found.append({"seed": seed, "kind": "ae", "z": int(z), "nll": measures["nll"]})
    return found


def figures(found: list[dict[str, Any]], cfg: ExperimentConfig, out_dir: Path) -> list[Figure]:
    """Per model kind: distortion against rate, one marker per (z, C) at the seeds' mean with
    their range as bars, one colour per z, lines of equal ELBO, the AE's NLL per z dashed."""
    del cfg  # one signature with the other figure makers; nothing here depends on it
    made = []
    ae = {}
    for r in found:
        if r["kind"] == "ae":
            ae.setdefault(r["z"], []).append(r["nll"])
    for kind in MODES:
        mine = [r for r in found if r["kind"] == kind]
        if not mine:
            continue
        fig = MplFigure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.subplots()
        latents = sorted({r["z"] for r in mine})
        colours = {z: f"C{i}" for i, z in enumerate(latents)}
        groups: dict[tuple[int, float, int], list[dict[str, Any]]] = {}
        for r in mine:
            groups.setdefault((r["z"], r["kl_weight"], r["n_samples"]), []).append(r)
        for (z, c, k), rs in sorted(groups.items()):
            rate = np.array([r["rate"] for r in rs])
            dist = np.array([r["distortion"] for r in rs])
            ax.errorbar(
                rate.mean(),
                dist.mean(),
                xerr=[[rate.mean() - rate.min()], [rate.max() - rate.mean()]],
                yerr=[[dist.mean() - dist.min()], [dist.max() - dist.mean()]],
                fmt="o" if k == min(r["n_samples"] for r in mine) else "s",
                color=colours[z],
                capsize=2,
            )
            ax.annotate(
                f"C={c:g}, k={k}",
                (rate.mean(), dist.mean()),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        for z in latents:
            ax.plot([], [], "o", color=colours[z], label=f"z={z}")
            if z in ae:
                ax.axhline(np.mean(ae[z]), color=colours[z], ls="--", lw=0.8)
        _equal_elbo_lines(ax)
        ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats/image")
        ax.set_ylabel("distortion: reconstruction NLL under q, nats/image")
        title = f"{kinds.record(kind).title}: rate against distortion"
        ax.set_title(title)
        ax.legend(fontsize=8)
        path = save_figure(fig, out_dir, f"rate_distortion_{kind}.png")
        caption = (
            "Each marker is one (z, C, k): the mean of its seeds, bars from the lowest seed to "
            "the highest (circles: the smallest k, squares: larger). Grey lines of slope -1 "
            "join points of equal ELBO; dashed lines are the AE's reconstruction NLL at each z, "
            "in its colour. A smaller C moves a model right (more rate) and down (less "
            "distortion)."
        )
        made.append(Figure(path=path, title=title, caption=caption))
    return made


def _equal_elbo_lines(ax: Any) -> None:
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for total in np.linspace(x0 + y0, x1 + y1, 8)[1:-1]:
        ax.plot([x0, x1], [total - x0, total - x1], color="0.85", lw=0.7, zorder=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
