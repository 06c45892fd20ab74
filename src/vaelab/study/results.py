"""results.json and the terminal summary: every number per seed, tables as mean ± sd over seeds.

`results["per_seed"]` keeps every experiment's numbers of each seed; `results["experiments"]`
is the same tree for the report's tables, where a number that differs between seeds is a
{mean, sd, n, min, max} summary (`stats.across_seeds`). The claims judge each comparison in
every seed (`claims.judge_claims`).
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from vaelab.claims.verdicts import judge_claims
from vaelab.core.config import StudyConfig, epochs_text, to_dict
from vaelab.core.device import resolve_device
from vaelab.core.folders import read_metrics, row_step
from vaelab.data.mnist import MNIST
from vaelab.evaluation.evidence import across_seeds, central
from vaelab.experiments.common import ExperimentResult, Figure, StudyData
from vaelab.models.kernels import step_for
from vaelab.study.per_seed import result_dict

STILL_IMPROVING = 0.01  # a test objective that fell by more over the last fifth of training


def training_record(
    run_dir: Path, kind: str, z: int, seed: int, reused: bool, steps_per_epoch: int
) -> dict[str, Any]:
    """One run's training as the report shows it, and whether it was still improving."""
    rows = [r | {"step": row_step(r, steps_per_epoch)} for r in read_metrics(run_dir)]
    last = rows[-1] if rows else {}
    tested = [r for r in rows if r.get("test_loss") is not None]
    steps = last.get("step", 0)
    return {
        "kind": kind,
        "latent": z,
        "seed": seed,
        "folder": str(run_dir.name),
        "reused": reused,
        "steps": steps,
        "epochs": steps / steps_per_epoch,
        "seconds": sum(r.get("seconds") or 0.0 for r in rows),
        "train_loss": last.get("loss"),
        "test_loss": tested[-1]["test_loss"] if tested else None,
        "still_improving": still_improving(tested, steps),
        "loss_curve": [r["loss"] for r in rows],
        "curve_steps": [r["step"] for r in rows],
    } | _classifier_record(tested)


def _classifier_record(tested: list[dict[str, Any]]) -> dict[str, Any]:
    """M2: the test error of q(y|x) at the last evaluated epoch, and at each one."""
    errors = [(r["epoch"], r["test_error"]) for r in tested if r.get("test_error") is not None]
    if not errors:
        return {}
    return {"test_error": errors[-1][1], "error_curve": [list(e) for e in errors]}


def still_improving(tested: list[dict[str, Any]], steps: int) -> bool | None:
    """True when the test objective fell by more than 1% over the last fifth of the steps:
    from the last evaluation at or before 4/5 of the way to the final one. None: too few.
    `tested` are the log's evaluated rows, each with its "step"."""
    if len(tested) < 2 or steps < 2:
        return None
    before = [r for r in tested if r["step"] <= steps - max(1, steps // 5)]
    if not before:
        return None
    start, end = before[-1]["test_loss"], tested[-1]["test_loss"]
    return bool(start - end > STILL_IMPROVING * abs(start))


def assemble(
    cfg: StudyConfig,
    mnist: MNIST,
    data: StudyData,
    training: dict[str, Any],
    per_seed: dict[int, list[ExperimentResult]],
    figures: dict[str, list[dict[str, Any]]],
    timings: dict[str, Any],
) -> dict[str, Any]:
    """results.json: settings, data, every number of every seed, their summary, the verdicts."""
    seeds = list(per_seed)
    numbers = {seed: {r.name: r.numbers for r in results} for seed, results in per_seed.items()}
    device = resolve_device(cfg.train.device)
    return {
        "config": to_dict(cfg),
        "seeds": seeds,
        "data": {
            "source": mnist.source,
            "path": cfg.data.path,
            "sha256": mnist.sha256,
            "train_images": len(data.x_train),
            "test_images": len(data.x_test),
            "test_images_of": len(mnist.y_test),
            "labelled_images": min(cfg.data.n_labelled, len(data.x_train)),
        },
        "images_per_measure": images_per_measure(cfg, len(data.x_test)),
        "training_length": training_length(cfg, len(data.x_train)),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "step": step_for(device),
        },
        "training": training,
        "experiments": across_seeds([numbers[s] for s in seeds]),
        "per_seed": {str(s): numbers[s] for s in seeds},
        "figures": figures,
        "claims": [c.to_dict() for c in judge_claims([numbers[s] for s in seeds], seeds)],
        "timings": timings,
    }


def training_length(cfg: StudyConfig, n_train: int) -> dict[str, Any]:
    """How long every run trained: steps, steps per epoch, epochs, and a line saying so."""
    t = cfg.train
    steps, per = t.total_steps(n_train), t.steps_per_epoch(n_train)
    text = f"{steps} steps of {t.batch_size} images ({epochs_text(steps, per)} of {per} steps)"
    return {"steps": steps, "steps_per_epoch": per, "epochs": steps / per, "text": text}


def report_figures(first_seed: list[ExperimentResult], pooled: list[Figure]) -> dict[str, Any]:
    """The figures of the report: the first seed's, and the clustering plots of all seeds."""
    figures = {r.name: result_dict(r)["figures"] for r in first_seed}
    figures["clustering"] = [dataclasses.asdict(f) for f in pooled]
    return figures


def images_per_measure(cfg: StudyConfig, n_test: int) -> dict[str, Any]:
    """How many test images each measure of results.json is computed on."""
    e = cfg.experiments
    bounds = n_test if e.iwae_images is None else min(e.iwae_images, n_test)
    return {
        "reconstruction": {
            "nll": n_test,
            "mse": n_test,
            "read_as_true_digit": n_test,
            "fours_read_as_nine": "the test 4s among them",
            "read_as_given_label": n_test,
            "kl": n_test,
            "elbo": n_test,
            "kl_on_iwae_images": bounds,
            "elbo_on_iwae_images": bounds,
            "iwae": bounds,
        },
        "interpolation": "two test images per walk",
        "latent": n_test,
        "clustering": n_test,
        "style": "six test images, each decoded with every label",
        "training": "test_loss: every test image of the subset",
    }


def print_summary(results: dict[str, Any], console: Console) -> None:
    """Test NLL per model and latent size, then the claims and their verdicts."""
    rec = results["experiments"].get("reconstruction") or {}
    n = len(results["seeds"])
    if rec.get("table"):
        zs = rec["latents_all"]
        title = "Test reconstruction NLL (nats/image)" + (f", mean of {n} seeds" if n > 1 else "")
        nll = Table("model", *[f"z={z}" for z in zs], title=title)
        for mode, by_z in rec["table"].items():
            cells = [_cell(by_z.get(str(z), {}).get("nll")) for z in zs]
            nll.add_row(mode, *cells)
        console.print(nll)
    claims = Table(title=f"The article's claims, judged over {n} seed{'s' * (n != 1)}")
    claims.add_column("#", no_wrap=True)
    claims.add_column("the article's claim", overflow="fold")
    claims.add_column("verdict", no_wrap=True, min_width=len("parts disagree"))
    claims.add_column("why", overflow="fold")
    for claim in results["claims"]:
        claims.add_row(str(claim["number"]), claim["text"], claim["verdict"], claim["reason"])
    console.print(claims)
    if any(c.get("provisional") for c in results["claims"]):
        console.print(
            "provisional: measured in one seed; no interval holds its level without a second"
        )
    smallest = [c.get("decidable_seed_sds") for c in results["claims"]]
    if any(smallest):
        low, high = min(x for x in smallest if x), max(x for x in smallest if x)
        console.print(
            f"with these seeds an effect must exceed {low:.2g} to {high:.2g} times the spread "
            "between seeds to be decided (by claim)"
        )
    for line in judged_again_lines(results):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.print(f"total time: {results['timings']['total']:.0f} s")


def judged_again_lines(results: dict[str, Any]) -> list[str]:
    """What the claims judged on other images, with the AE trained the other way, and at
    convergence say beside the headline verdicts."""
    lines = []
    evaluation = results.get("evaluation") or {}
    for name, entry in (evaluation.get("sets") or {}).items():
        if name != evaluation.get("headline"):
            lines.append(f"on {name} images: {entry['changes']['summary']}")
    losses = results.get("ae_losses") or {}
    for loss, entry in (losses.get("sets") or {}).items():
        if loss != losses.get("headline"):
            lines.append(f"with the AE on the {loss} loss: {entry['changes']['summary']}")
    families = results.get("families") or {}
    for family, entry in (families.get("sets") or {}).items():
        if family != families.get("headline"):
            lines.append(f"on the {family} models: {entry['changes']['summary']}")
    regimes = results.get("regimes") or {}
    if regimes.get("available"):
        lines += [f"claim {row['claim']}: {row['sentence']}" for row in regimes["rows"]]
    elif regimes:
        lines.append(f"no converged study yet: {regimes['how']}")
    return lines


def _cell(value: Any) -> str:
    value = central(value)
    return "-" if value is None else f"{value:.1f}"
