"""Everything the page shows, gathered from results.json into plain rows and sentences, so the
templates only lay it out."""

from __future__ import annotations

from typing import Any

from vaelab.evaluation.evidence import central
from vaelab.report import header, numbers
from vaelab.report.claim_view import claim_view
from vaelab.report.names import model_name, units_used
from vaelab.report.regime import judged_again, regime_view
from vaelab.report.tables import measure_table, rate_distortion_rows, training_rows
from vaelab.report.walks import example_note, walk_grid

SHARED = ("reconstruction", "latent", "clustering")  # figures that back more than one claim
MEASURES = (
    ("NLL (nats/image, lower is sharper)", "nll"),
    ("MSE (per pixel)", "mse"),
    ("read as the true digit (share)", "read_as_true_digit"),
    ("test 4s read as 9 (share)", "fours_read_as_nine"),
    ("read as the wrong label given (share)", "read_as_given_label"),
)


def page_view(results: dict[str, Any], figures: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The page's rows and sentences; `figures` are results["figures"] inlined."""
    e = results["experiments"]
    shown = results["config"].get("experiments", {}).get("plot_latent")
    claims = results["claims"]
    walk_claim = next((c for c in claims if c["number"] == 4), None)
    first = (results.get("per_seed") or {}).get(str(results["seeds"][0])) or {}
    rows = training_rows(results["training"])
    rec = e.get("reconstruction") or {}
    return {
        "what": header.what_ran(results),
        "how_far": header.how_far(results),
        "next": header.next_run(results),
        "claims": [claim_view(c, shown) for c in claims],
        "units": units_used(claims),
        "walks": walk_grid(
            figures.get("interpolation", []), first.get("interpolation"), walk_claim
        ),
        "walk_note": example_note(first.get("interpolation"), walk_claim, len(results["seeds"])),
        "measures": [(t, measure_table(rec["table"], k, rec["latents_all"])) for t, k in MEASURES]
        if rec.get("table")
        else [],
        "bounds": bounds_table(rec),
        "latent_rows": latent_rows(e.get("latent")),
        "rd_rows": rate_distortion_rows((e.get("rate_distortion") or {}).get("rows", [])),
        "swept": len((results.get("claims_over_settings") or {}).get("points") or []) > 1,
        "training_rows": rows,
        "together": any(r["span"] > 1 for r in rows),
        "judged_again": judged_again(results),
        "regime": regime_view(results),
    }


def bounds_table(rec: dict[str, Any]) -> dict[str, Any] | None:
    """KL, ELBO (and IWAE where it was computed) of each VAE mode by z, all on the same
    images: the bound's images, or all the test images when no IWAE was computed. A mode
    without a bound (an AE, a label that is wrong or inferred) has no row."""
    table = rec.get("table") or {}
    latents = rec.get("latents_all") or []
    iwae = any(central(m.get("iwae")) is not None for by_z in table.values() for m in by_z.values())
    fields = ("KL", "ELBO", "IWAE") if iwae else ("KL", "ELBO")
    keys = ("kl_on_iwae_images", "elbo_on_iwae_images", "iwae") if iwae else ("kl", "elbo")
    rows = []
    for mode in table:
        cells = []
        for z in latents:
            m = table[mode].get(str(z)) or {}
            cells += [numbers.summary(m.get(k), 1) if m.get(k) is not None else "—" for k in keys]
        if any(c != "—" for c in cells):
            rows.append({"model": model_name(mode), "cells": cells})
    if not rows:
        return None
    images = rec.get("iwae_images") if iwae else None
    return {
        "latents": latents,
        "fields": fields,
        "rows": rows,
        "iwae": iwae,
        "images": images or "test",
    }


LATENT_KEYS = ("centre_offset", "knn_accuracy_whitened", "knn_accuracy", "silhouette")


def latent_rows(latent: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The latent table: centre and spread (the first seed's), then the measures."""
    if not latent:
        return []
    rows = []
    for name, s in (latent.get("models") or {}).items():
        cells = [_vector(s.get("centre")), _vector(s.get("spread"))]
        cells += [numbers.summary(s.get(k), 2 if k == "centre_offset" else 3) for k in LATENT_KEYS]
        rows.append({"model": model_name(name), "cells": cells})
    return rows


def _vector(values: Any) -> str:
    if not isinstance(values, list):
        return numbers.sig(values)
    return "(" + ", ".join(numbers.sig(v) for v in values) + ")"
