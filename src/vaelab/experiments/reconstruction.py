"""Experiment 1: how well each model reconstructs, by eye (grids) and in numbers (tables).

Rows of the grids are the article's five modes: AE, VAE, and the CVAE given no label, the
true label, or a wrong one; where the study trained an M2, two more rows show it with the label
its q(y|x) reads and with the true label. Every trained model is also measured on the whole
test subset: Bernoulli NLL and MSE of the reconstruction from the mean, the ELBO (C = 1) and the
importance-weighted bound for the VAEs, and what a fixed digit classifier reads in the
reconstructions (how often it reads the true digit, how often a "4" comes back as a "9",
how often the reconstruction is read as the wrong label given). A wrong label may pull a
reconstruction toward itself without winning, so for every test image of each grid's digit the
classifier's probability of the grid's wrong label is kept per image, for the CVAE given that
label, no label and the true one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MplFigure

from vaelab.core.config import ExperimentConfig
from vaelab.evaluation.evidence import EVIDENCE, mean_estimate
from vaelab.evaluation.measured import (
    DigitPair,
    LabelPull,
    ReconstructionEvidence,
    WrongLabelReading,
)
from vaelab.evaluation.measures import batches, per_image_error, variational_bounds
from vaelab.experiments.common import (
    ExperimentResult,
    Figure,
    Models,
    StudyData,
    first_of_digit,
    needs_judge,
    save_figure,
)
from vaelab.models import kinds
from vaelab.models.classifier import DigitClassifier
from vaelab.models.kinds.base import INFERRED_LABEL, NO_LABEL, TRUE_LABEL, WRONG_LABEL, Mode
from vaelab.models.networks import AutoEncoder

ARTICLE = ("ae", "vae", "cvae")  # the kinds of the article's five modes
MODES = tuple(mode for kind in ARTICLE for mode in kinds.record(kind).modes)


def modes_for(models: Models) -> tuple[Mode, ...]:
    """The article's five modes, then every other kind's the study trained, in the registry's
    order, as its role has them (M2: given no label it reads one with q(y|x) and reconstructs
    with that; given the true label, as the CVAE does)."""
    present = {kind for kind, _ in models}
    others = [r for r in kinds.RECORDS if r.name in present and r.name not in ARTICLE]
    return MODES + tuple(mode for r in others for mode in r.modes)


def wrong_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """For each image a label other than its own, drawn uniformly with a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, 10, y.shape, generator=gen)
    return (y + shift) % 10


def mode_inputs(mode: Mode, y: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor | None:
    """The labels a mode feeds its model (None: the model takes none)."""
    if not mode.given:
        return None
    labels = {
        NO_LABEL: torch.full_like(y, -1),
        INFERRED_LABEL: torch.full_like(y, -1),  # M2 reads one with q(y|x)
        TRUE_LABEL: y,
        WRONG_LABEL: wrong,
    }
    return labels[mode.given]


@torch.no_grad()
def _readings(
    model: AutoEncoder, x: torch.Tensor, labels: torch.Tensor | None, judge: DigitClassifier
) -> np.ndarray:
    return judge.predict(model.reconstruct(x, labels))


def measure_mode(
    model: AutoEncoder,
    data: StudyData,
    labels: torch.Tensor | None,
    judge: DigitClassifier,
    given: torch.Tensor | None,
) -> dict[str, Any]:
    """NLL, MSE and the classifier's readings of one model's reconstructions in one mode.

    Under "evidence", as estimates with their test-image resamples (`mean_estimate`): the
    NLL and the share of reconstructions read as another digit than the image's, over the
    test images, and the share of test 4s read as 9, over the test 4s."""
    x, y = data.x_test, data.y_test
    nll, mse = per_image_error(model, x, labels)
    result: dict[str, Any] = {"nll": float(nll.mean()), "mse": float(mse.mean())}
    read = _readings(model, x, labels, judge)
    truth = y.numpy()
    result["read_as_true_digit"] = float(np.mean(read == truth))
    fours = truth == 4
    result["fours_read_as_nine"] = float(np.mean(read[fours] == 9)) if fours.any() else None
    if given is not None:  # a wrong label: how often the reconstruction follows it
        result["read_as_given_label"] = float(np.mean(read == given.numpy()))
    evidence = {
        "nll": mean_estimate(nll.numpy()),
        "misread": mean_estimate((read != truth).astype(np.float64)),
    }
    if fours.any():
        evidence["fours_as_nine"] = mean_estimate((read[fours] == 9).astype(np.float64))
    result[EVIDENCE] = evidence
    return result


ACTIVE_VARIANCE = 0.01  # Burda et al. (2015): a unit whose posterior mean varies more is active


@torch.no_grad()
def active_units(model: AutoEncoder, x: torch.Tensor, y: torch.Tensor | None) -> int:
    """Latent dimensions whose posterior mean varies over the images by more than 0.01 in
    variance: a collapsed posterior (the KL weight pushing q(z|x) onto the prior) shows here."""
    means = torch.cat([model.embed(xb, yb) for xb, yb in batches(x, y, 1000)])
    return int((means.var(dim=0, unbiased=True) > ACTIVE_VARIANCE).sum())


def measure_bounds(
    model: AutoEncoder, data: StudyData, labels: torch.Tensor | None, cfg: ExperimentConfig
) -> dict[str, float]:
    n = len(data.x_test) if cfg.iwae_images is None else min(cfg.iwae_images, len(data.x_test))
    bounds = variational_bounds(
        model, data.x_test, labels, elbo_samples=cfg.elbo_samples, seed=cfg.seed
    )
    if cfg.iwae_samples == 0 and n == len(data.x_test):  # the same ELBO: computed once
        iwae = bounds
    else:
        iwae = variational_bounds(
            model,
            data.x_test[:n],
            None if labels is None else labels[:n],
            elbo_samples=cfg.elbo_samples,
            iwae_samples=cfg.iwae_samples,
            seed=cfg.seed,
        )
    return {
        "kl": bounds["kl"],
        "elbo": bounds["elbo"],
        "rate": bounds["kl"],  # the rate-distortion plane: rate = KL, distortion = -ELBO - KL
        "distortion": -bounds["elbo"] - bounds["kl"],
        "active_units": active_units(model, data.x_test, labels),
        "iwae": iwae.get("iwae"),  # None when iwae_samples is 0
        "kl_on_iwae_images": iwae["kl"],
        "elbo_on_iwae_images": iwae["elbo"],
        "iwae_images": n,
    }


def table(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    judge: DigitClassifier,
    bounds: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """{mode: {z: measures}} for every trained model and, for the CVAE, every label mode;
    and their estimates, {measure: {mode: {z: estimate}}}. `bounds=False` leaves out the
    VAEs' KL, ELBO and IWAE, which no claim reads."""
    wrong = wrong_labels(data.y_test, cfg.seed)
    rows: dict[str, dict[str, Any]] = {}
    evidence: dict[str, Any] = {}
    for mode in modes_for(models):
        labels = mode_inputs(mode, data.y_test, wrong)
        for (model_kind, z), model in sorted(models.items()):
            if model_kind != mode.kind:
                continue
            given = wrong if mode.given == WRONG_LABEL else None
            numbers = measure_mode(model, data, labels, judge, given)
            for measure, found in numbers.pop(EVIDENCE).items():
                evidence.setdefault(measure, {}).setdefault(mode.name, {})[str(z)] = found
            # bounds on log p(x | a wrong y), or on a y read from x itself, bound nothing
            bounded = bounds and model.is_variational and given is None
            if bounded and mode.given != INFERRED_LABEL:
                numbers |= measure_bounds(model, data, labels, cfg)
            rows.setdefault(mode.name, {})[str(z)] = numbers
    return rows, evidence


@torch.no_grad()
def label_pull(
    model: AutoEncoder, data: StudyData, digit: int, wrong: int, judge: DigitClassifier
) -> dict[str, Any] | None:
    """How much label `wrong` pulls the CVAE's reconstructions of every test `digit`.

    Per image, the classifier's probability of `wrong` on the reconstruction given `wrong`,
    no label and the true label (paired by position), their means and how often `wrong` is
    read; and, given `wrong`, whether each reconstruction is read as `wrong` and whether as
    `digit` (does the label win over the image?). None when the test images hold no `digit`.
    """
    x = data.x_test[data.y_test == digit]
    if len(x) == 0:
        return None
    given: dict[str, list[float]] = {}
    wins: dict[str, float] = {}
    read: dict[str, list[float]] = {}
    for name, label in ((WRONG_LABEL, wrong), (NO_LABEL, -1), (TRUE_LABEL, digit)):
        proba = judge.predict_proba(model.reconstruct(x, torch.full((len(x),), label)))
        given[name] = proba[:, wrong].astype(np.float64).tolist()
        wins[name] = float(np.mean(proba.argmax(axis=1) == wrong))
        if name == WRONG_LABEL:
            reading = proba.argmax(axis=1)
            read["read as label"] = (reading == wrong).astype(np.float64).tolist()
            read["read as digit"] = (reading == digit).astype(np.float64).tolist()
    return {
        "images": len(x),
        "prob_given": given,
        "read_given_wrong": read,
        "mean_prob_given": {name: float(np.mean(p)) for name, p in given.items()},
        "read_as_given": wins,
    }


def label_pulls(
    models: Models, data: StudyData, cfg: ExperimentConfig, judge: DigitClassifier, latents: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[DigitPair, dict[str, Any]]]]:
    """{"4to9": {z: label_pull(...) less the per-image values}} for every grid digit and
    every CVAE among `latents`; and as estimates, {"pull": {pair: {z: LabelPull}}, "wins":
    {pair: {z: WrongLabelReading}}}."""
    pulls: dict[str, dict[str, Any]] = {}
    evidence: dict[str, dict[DigitPair, dict[str, Any]]] = {"pull": {}, "wins": {}}
    for digit, wrong in zip(cfg.recon_digits, cfg.wrong_labels, strict=True):
        pair = DigitPair(digit, wrong)
        by_z = pulls.setdefault(pair.key, {})
        for z in latents:
            model = models.get(("cvae", z))
            pull = None if model is None else label_pull(model, data, digit, wrong, judge)
            if pull is None:
                continue
            given, read = pull.pop("prob_given"), pull.pop("read_given_wrong")
            evidence["pull"].setdefault(pair, {})[str(z)] = LabelPull(
                wrong_label=mean_estimate(given[WRONG_LABEL]),
                no_label=mean_estimate(given[NO_LABEL]),
                true_label=mean_estimate(given[TRUE_LABEL]),
            )
            evidence["wins"].setdefault(pair, {})[str(z)] = WrongLabelReading(
                read_as_label=mean_estimate(read["read as label"]),
                read_as_digit=mean_estimate(read["read as digit"]),
            )
            by_z[str(z)] = pull
    return pulls, evidence


def grid_figure(
    models: Models, data: StudyData, digit: int, wrong: int, latents: tuple[int, ...]
) -> MplFigure:
    """The article's grid for one test image: rows = modes, columns = z, the original left."""
    index = first_of_digit(data.y_test, digit)
    x = data.x_test[index : index + 1]
    modes = modes_for(models)
    fig = MplFigure(figsize=(1.3 * (len(latents) + 1) + 1.5, 1.3 * len(modes) + 0.6))
    axes = fig.subplots(len(modes), len(latents) + 1, squeeze=False)
    for row, mode in enumerate(modes):
        labels = mode_inputs(mode, torch.tensor([digit]), torch.tensor([wrong]))
        _image(axes[row][0], x if row == 0 else None, "original" if row == 0 else "")
        axes[row][1].set_ylabel(
            _row_label(mode, digit, wrong), rotation=0, ha="right", va="center", fontsize=9
        )
        for col, z in enumerate(latents, start=1):
            model = models.get((mode.kind, z))
            image = None if model is None else model.reconstruct(x, labels).detach()
            _image(axes[row][col], image, f"z = {z}" if row == 0 else "")
    fig.suptitle(f'Reconstructions of a test "{digit}"')
    return fig


def _row_label(mode: Mode, digit: int, wrong: int) -> str:
    """ "cvae (true label)" -> "CVAE\n(true label 4)", "vae" -> "VAE"."""
    title = kinds.record(mode.kind).title
    if not mode.given:
        return title
    shown = {TRUE_LABEL: f"{TRUE_LABEL} {digit}", WRONG_LABEL: f"{WRONG_LABEL} {wrong}"}
    return f"{title}\n({shown.get(mode.given, mode.given)})"


def _image(ax: Any, image: torch.Tensor | None, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(image is not None)
    if image is not None:
        ax.imshow(image.reshape(28, 28).numpy(), cmap="gray", vmin=0, vmax=1)
    if title:
        ax.set_title(title, fontsize=9)


def run(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    out_dir: Path | None,
    judge: DigitClassifier | None = None,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """The grids of the article's two digits (with `out_dir` and `figures`), and every
    model's measures on the test images (without `out_dir`: the measures the claims read)."""
    judge = needs_judge(judge, "reconstruction")
    started = time.perf_counter()
    latents = tuple(z for z in cfg.recon_latents if any(k == z for _, k in models))
    drawn = []
    pairs = zip(cfg.recon_digits, cfg.wrong_labels, strict=True) if latents else ()
    where = out_dir if figures else None
    for digit, wrong in pairs if where is not None else ():  # no grid without a column
        grid = grid_figure(models, data, digit, wrong, latents)
        path = save_figure(grid, where, f"reconstruction_{digit}.png")
        drawn.append(
            Figure(
                path,
                f'Reconstructions of a "{digit}"',
                f"Read each row left to right: does the digit sharpen as z grows, "
                f'and does the CVAE given the label {wrong} draw a "{wrong}"?',
            )
        )
    rows, by_measure = table(models, data, cfg, judge, bounds=out_dir is not None)
    pulls, found = label_pulls(models, data, cfg, judge, latents)
    evidence = ReconstructionEvidence(**by_measure, **found)
    numbers = {
        "modes": [mode.name for mode in modes_for(models)],
        "latents": list(latents),
        "latents_all": sorted({z for _, z in models}),
        "iwae_samples": cfg.iwae_samples,
        "iwae_images": cfg.iwae_images,
        "elbo_samples": cfg.elbo_samples,
        "table": rows,
        "label_pull": pulls,
        EVIDENCE: evidence.to_json(),
    }
    return ExperimentResult("reconstruction", numbers, drawn, time.perf_counter() - started)
