"""The page's tables, built from results.json: training (each group's time once), the
rate-distortion rows (bounds on the same images) and the measures by mode and z."""

from __future__ import annotations

from typing import Any

from vaelab.evaluation.evidence import across_seeds
from vaelab.models import kinds
from vaelab.report import numbers
from vaelab.report.names import model_name

AE_LOSS_SHORT = {"mse": "the article's MSE", "bernoulli": "Bernoulli NLL"}


def _kind_order(kind: str) -> int:
    order = kinds.names()
    return order.index(kind) if kind in order else len(order)


def training_rows(training: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model and z, its seeds as mean ± sd. Where a model's latent sizes trained
    together (one time for the group in every seed), the group's time is given once, on its
    first row, with `span` rows; else each row has its own."""
    groups: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = {}
    for record in training.values():
        groups.setdefault((record["kind"], _variant(record)), {}).setdefault(
            record["latent"], []
        ).append(record)
    rows = []

    def order(item: tuple[tuple[str, str], dict[int, list[dict[str, Any]]]]) -> tuple[Any, ...]:
        (kind, variant), by_z = item
        other = any(r.get("variant") for records in by_z.values() for r in records)
        return _kind_order(kind), other, variant

    for (kind, variant), by_z in sorted(groups.items(), key=order):
        together = _together([r for records in by_z.values() for r in records])
        losses = [
            across_seeds([r[k] for r in records])
            for records in by_z.values()
            for k in ("train_loss", "test_loss")
        ]
        decimals = numbers.column_decimals(v for v in losses if v is not None)
        for i, (z, records) in enumerate(sorted(by_z.items())):
            row = _training_row(kind, variant, z, records, decimals)
            row["model_span"] = len(by_z) if i == 0 else 0
            row["span"] = len(by_z) if together and i == 0 else (0 if together else 1)
            if together:
                row["seconds"] = numbers.summary(across_seeds(_group_times(by_z)), 1)
            rows.append(row)
    return rows


def _variant(record: dict[str, Any]) -> str:
    """ "the article's MSE" for an AE's loss, "C = 0.1, k = 5" for a point of a sweep."""
    if record.get("ae_loss"):
        return AE_LOSS_SHORT.get(record["ae_loss"], record["ae_loss"])
    point = record.get("point") or ()
    return f"C = {point[0]:g}, k = {point[1]}" if len(point) == 2 else ""


def _together(records: list[dict[str, Any]]) -> bool:
    """Every seed's runs of this model report one time: they trained as one group."""
    by_seed: dict[int, set[float]] = {}
    for r in records:
        by_seed.setdefault(r.get("seed", 0), set()).add(round(r["seconds"], 6))
    sizes = {len({r["latent"] for r in records})}
    return sizes != {1} and all(len(times) == 1 for times in by_seed.values())


def _group_times(by_z: dict[int, list[dict[str, Any]]]) -> list[float]:
    first = next(iter(by_z.values()))
    return [r["seconds"] for r in sorted(first, key=lambda r: r.get("seed", 0))]


def _training_row(
    kind: str, variant: str, z: int, records: list[dict[str, Any]], decimals: int
) -> dict[str, Any]:
    improving = [r["still_improving"] for r in records if r["still_improving"] is not None]
    return {
        "model": model_name(kind) + (f" ({variant})" if variant else ""),
        "kind": kind,
        "point": variant,
        "latent": z,
        "seeds": len(records),
        "steps": numbers.summary(across_seeds([r.get("steps", r["epochs"]) for r in records])),
        "seconds": numbers.summary(across_seeds([r["seconds"] for r in records]), 1),
        "train_loss": numbers.summary(across_seeds([r["train_loss"] for r in records]), decimals),
        "test_loss": numbers.summary(across_seeds([r["test_loss"] for r in records]), decimals),
        "still_improving": sum(improving) if improving else None,
        "judged": len(improving),
        "test_error": (
            numbers.summary(across_seeds([r["test_error"] for r in records]), 4)
            if all("test_error" in r for r in records)
            else None
        ),
        "error_curve": _mean_curve([r.get("error_curve") or [] for r in records]),
        "reused": all(r["reused"] for r in records),
    }


def _mean_curve(curves: list[list[list[float]]]) -> str:
    """ "epoch: mean error" over the seeds, at the epochs every seed was evaluated at."""
    common = set.intersection(*(({e for e, _ in c}) for c in curves)) if curves else set()
    if not common:
        return ""
    means = {e: sum(dict(c)[e] for c in curves) / len(curves) for e in sorted(common)}
    return ", ".join(f"{int(e)}: {v:.1%}" for e, v in means.items())


RD_FIELDS = ("rate", "distortion", "elbo_on_iwae_images", "iwae", "active_units")


def rate_distortion_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rate-distortion rows averaged over seeds, one per (kind, z, C, k); the ELBO is the
    one on the IWAE's images (`elbo_on_iwae_images`), so the two bounds compare."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] != "ae":
            groups.setdefault(
                (row["kind"], row["z"], row["kl_weight"], row["n_samples"]), []
            ).append(row)
    shown = []
    for (kind, z, c, k), found in sorted(
        groups.items(), key=lambda i: (_kind_order(i[0][0]), *i[0][1:])
    ):
        row: dict[str, Any] = {
            "model": model_name(kind),
            "z": z,
            "kl_weight": f"{c:g}",
            "n_samples": k,
            "seeds": len(found),
        }
        for field in RD_FIELDS:
            values = [r[field] for r in found if r.get(field) is not None]
            row[field] = numbers.fixed(sum(values) / len(values), 1) if values else "—"
        shown.append(row)
    return shown


def measure_table(table: dict[str, dict[str, Any]], key: str, latents: list[Any]) -> dict[str, Any]:
    """One measure of experiment 1 by mode and z, every cell with the column's decimals."""
    values = [by_z.get(str(z), {}).get(key) for by_z in table.values() for z in latents]
    decimals = numbers.column_decimals(v for v in values if v is not None)
    rows = []
    for mode, by_z in table.items():
        cells = [by_z.get(str(z), {}).get(key) for z in latents]
        if any(c is not None for c in cells):
            rows.append(
                {
                    "model": model_name(mode),
                    "cells": [
                        numbers.summary(c, decimals) if c is not None else "—" for c in cells
                    ],
                }
            )
    return {"rows": rows, "latents": latents}
