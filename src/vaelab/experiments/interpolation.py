"""Experiment 2: walk the straight line between two digits' latent means and watch the images.

The article claims (claim 4) that a smaller latent space makes the walk pass through more other
digits (z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0). It judged that by eye on one walk; here a fixed
digit classifier reads every frame, so the digits passed and the number of changes are
measured, on the article's walk (the first test image of each digit, saved as an animated GIF
and as a strip of frames with their readings) and on `walk_pairs` seeded pairs of test images
of the two digits, the same pairs at every z and in every seed, so one walk's accident does not
decide the claim. The notebook's own two walks, between training images 3 -> 1 and 7 -> 15 of
the standard order (`experiments.article_walks`), are drawn and read as well, beside the
seeded walks and never judged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MplFigure
from PIL import Image

from vaelab.core import fileio
from vaelab.core.config import ExperimentConfig
from vaelab.core.errors import VaelabError
from vaelab.evaluation.evidence import EVIDENCE, mean_estimate
from vaelab.evaluation.measured import ByZ, DigitPair, InterpolationEvidence
from vaelab.experiments.common import (
    ExperimentResult,
    Figure,
    Models,
    StudyData,
    first_of_digit,
    needs_judge,
    save_figure,
)
from vaelab.models.classifier import DigitClassifier
from vaelab.models.networks import AutoEncoder

NAME = "interpolation"
SIDE = 28  # MNIST images are SIDE x SIDE
STRIP_FRAMES = 10  # frames shown in the still strip; the GIF shows them all
WALK_ROLE = "vae"  # the article walks the VAE's latent space (a family's VAE plays it)


@torch.no_grad()
def latent_walk(
    model: AutoEncoder,
    x0: torch.Tensor,
    x1: torch.Tensor,
    steps: int,
    y0: int | None = None,
    y1: int | None = None,
) -> torch.Tensor:
    """Decode `steps` evenly spaced points on the line mu0 -> mu1, endpoints included.

    Means, not samples: the walk should show the model's geometry, not its noise, and its ends
    are then exactly the reconstructions of x0 and x1. For a CVAE, y0/y1 label the endpoints
    when encoding; frames are decoded with that label if both agree, else with "no label" (-1),
    since a frame between two digits has no single true label. Returns (steps, 784) pixel
    probabilities on the CPU.
    """
    if steps < 2:
        raise VaelabError(f"a walk needs at least 2 steps (its two ends), got {steps}")
    if (y0 is None) != (y1 is None):
        raise VaelabError("give labels for both ends of the walk or for neither")
    device = next(model.parameters()).device
    x = torch.stack([x0.reshape(-1), x1.reshape(-1)]).to(device, torch.float32)  # (2, 784)
    y = None if y0 is None else torch.tensor([y0, y1], dtype=torch.long, device=device)
    mu = model.encode(x, y).mu  # (2, Z)
    z = _line(mu[:1], mu[1:], steps)[0]  # (steps, Z)
    y_frames = None
    if y is not None:
        label = y0 if y0 == y1 else -1
        y_frames = torch.full((steps,), label, dtype=torch.long, device=device)
    return torch.sigmoid(model.decode(z, y_frames)).cpu()


def _line(mu0: torch.Tensor, mu1: torch.Tensor, steps: int) -> torch.Tensor:
    """(P, steps, Z) points from each mu0 to its mu1, (P, Z) each.

    (1 - t) * mu0 + t * mu1 rather than mu0 + t * (mu1 - mu0): both ends then come out
    bit-for-bit equal to the encoded means, so the first and last frames are reconstructions.
    """
    t = torch.linspace(0.0, 1.0, steps, device=mu0.device).view(1, steps, 1)
    return (1 - t) * mu0.unsqueeze(1) + t * mu1.unsqueeze(1)


@torch.no_grad()
def walk_readings(
    model: AutoEncoder, x0: torch.Tensor, x1: torch.Tensor, steps: int, judge: DigitClassifier
) -> np.ndarray:
    """(P, steps) digits read along the walks from each image of x0 to its partner in x1."""
    mu0, mu1 = model.encode(x0).mu, model.encode(x1).mu  # (P, Z)
    frames = torch.sigmoid(model.decode(_line(mu0, mu1, steps).reshape(-1, mu0.shape[1])))
    return judge.predict(frames).reshape(len(x0), steps)


def walk_pairs(y: torch.Tensor, a: int, b: int, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n (start, end) test-image indices: first the article's walk (the first test `a` and the
    first `b`), then seeded draws with replacement among the test images of each digit."""
    starts, ends = np.flatnonzero(y.numpy() == a), np.flatnonzero(y.numpy() == b)
    if not len(starts) or not len(ends):
        missing = a if not len(starts) else b
        raise VaelabError(f"the test images hold no {missing}: use a larger data.test_size")
    rng = np.random.default_rng([seed, a, b])
    more = max(0, n - 1)
    return (
        np.concatenate([starts[:1], rng.choice(starts, more)]),
        np.concatenate([ends[:1], rng.choice(ends, more)]),
    )


def others_passed(readings: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per walk (row of readings): distinct digits read strictly inside it, other than a, b
    and whatever its two end frames read as (a misread end is not a digit passed)."""
    counts = []
    for row in np.asarray(readings):
        counts.append(len(set(row[1:-1].tolist()) - {a, b, int(row[0]), int(row[-1])}))
    return np.asarray(counts, dtype=np.float64)


def count_changes(digits: Sequence[int]) -> int:
    """How many times the reading changes from one frame to the next."""
    return sum(1 for a, b in zip(digits, digits[1:], strict=False) if a != b)


def digit_path(digits: Sequence[int]) -> list[int]:
    """The readings with consecutive repeats collapsed: [1, 1, 8, 6, 6, 0] -> [1, 8, 6, 0]."""
    return [int(d) for i, d in enumerate(digits) if i == 0 or d != digits[i - 1]]


def _to_pixels(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T, 28, 28) uint8 from (T, 784) probabilities in [0, 1]."""
    array = frames.detach().cpu().numpy() if torch.is_tensor(frames) else np.asarray(frames)
    if array.ndim != 2 or array.shape[1] != SIDE * SIDE or len(array) == 0:
        raise VaelabError(f"frames must be (T, {SIDE * SIDE}) with T >= 1, got {array.shape}")
    return np.rint(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8).reshape(-1, SIDE, SIDE)


def save_gif(
    frames: torch.Tensor | np.ndarray,
    path: str | Path,
    scale: int = 4,
    duration_ms: int = 80,
    endpoint_ms: int = 700,
) -> None:
    """Write the frames as a looping animated GIF, upscaled `scale` times (nearest neighbour).

    The first and last frames stay `endpoint_ms` so a viewer can see where the walk starts and
    ends. Written whole to memory first, then atomically, so a reader never sees half a GIF.
    Pillow merges consecutive frames that are identical, adding up their durations.
    """
    if scale < 1 or duration_ms < 1 or endpoint_ms < 1:
        raise VaelabError("save_gif needs scale, duration_ms and endpoint_ms >= 1")
    size = (SIDE * scale, SIDE * scale)
    images = [Image.fromarray(p).resize(size, Image.Resampling.NEAREST) for p in _to_pixels(frames)]
    durations = [duration_ms] * len(images)
    durations[0] = durations[-1] = endpoint_ms
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
    )
    fileio.write_bytes(path, buffer.getvalue())


def strip_frames(n_frames: int, n_shown: int = STRIP_FRAMES) -> list[int]:
    """About `n_shown` evenly spaced frame indices, always the first and the last."""
    if n_frames < 1:
        raise VaelabError("a strip needs at least one frame")
    chosen = np.rint(np.linspace(0, n_frames - 1, min(n_shown, n_frames))).astype(int)
    return sorted(set(chosen.tolist()))


def strip_figure(
    frames: torch.Tensor | np.ndarray,
    readings: Sequence[int],
    title: str,
) -> MplFigure:
    """A row of evenly chosen frames, each with its step and the classifier's reading under it."""
    pixels = _to_pixels(frames)
    if len(readings) != len(pixels):
        raise VaelabError(f"{len(readings)} readings for {len(pixels)} frames")
    shown = strip_frames(len(pixels))
    fig = MplFigure(figsize=(1.1 * len(shown), 1.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    for ax, index in zip(axes, shown, strict=True):
        ax.imshow(pixels[index], cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"step {index}\nreads {readings[index]}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def walk_numbers(readings: Sequence[int]) -> dict[str, Any]:
    """What claim 4 needs from one walk: every reading, the digits passed, the changes."""
    return {
        "readings": [int(r) for r in readings],
        "path": digit_path(readings),
        "changes": count_changes(readings),
        "start_reads_as": int(readings[0]),
        "end_reads_as": int(readings[-1]),
    }


def _walk_figures(
    frames: torch.Tensor,
    numbers: dict[str, Any],
    out_dir: Path,
    a: int,
    b: int,
    z: int,
    article: tuple[int, int] | None = None,
) -> list[Figure]:
    """Save one walk's GIF and strip; return both with captions saying what to look at.
    `article`: the notebook's walk between these two training images."""
    stem = (
        f"walk_{a}to{b}_z{z}" if article is None else f"walk_train{article[0]}to{article[1]}_z{z}"
    )
    gif_path = f"figures/{stem}.gif"
    save_gif(frames, Path(out_dir) / gif_path)
    path_text = " → ".join(str(d) for d in numbers["path"])
    title = f"VAE z={z}: {a} → {b}"
    if article is not None:
        title = f"VAE z={z}: the article's walk, training images {article[0]} → {article[1]}"
    strip = strip_figure(frames, numbers["readings"], f"{title} (classifier reads {path_text})")
    png_path = save_figure(strip, Path(out_dir), f"{stem}.png")
    gif_caption = (
        f"The VAE (z={z}) decoding the straight line from a {a}'s latent mean to a "
        f"{b}'s; watch which other digits appear on the way."
    )
    png_caption = (
        f"Evenly chosen frames of the z={z} walk from {a} to {b}; the classifier "
        f"reads {path_text} ({numbers['changes']} changes), fewer at larger z if "
        f"claim 4 holds."
    )
    return [
        Figure(gif_path, f"{title} (animation)", gif_caption),
        Figure(png_path, f"{title} (frames)", png_caption),
    ]


def article_walks(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    classifier: DigitClassifier,
    out_dir: Path | None,
) -> tuple[dict[str, Any], list[Figure]]:
    """The notebook's own walks between training images (`cfg.article_walks`), with the VAE
    at each z of `cfg.recon_latents`: {"3to1": {"images", "digits", "walks": {z: walk}}},
    drawn into `out_dir` when there is one. A pair beyond the training images at hand is
    left out."""
    numbers: dict[str, Any] = {}
    figures: list[Figure] = []
    for i0, i1 in cfg.article_walks:
        if max(i0, i1) >= len(data.x_train):
            continue
        a, b = int(data.y_train[i0]), int(data.y_train[i1])
        entry: dict[str, Any] = {"images": [i0, i1], "digits": [a, b], "walks": {}}
        for z in cfg.recon_latents:
            model = models.get((WALK_ROLE, z))
            if model is None:
                continue
            frames = latent_walk(model, data.x_train[i0], data.x_train[i1], cfg.walk_steps)
            walk = walk_numbers(classifier.predict(frames).tolist())
            entry["walks"][str(z)] = walk
            if out_dir is not None:
                figures += _walk_figures(frames, walk, out_dir, a, b, z, article=(i0, i1))
        numbers[f"{i0}to{i1}"] = entry
    return numbers, figures


def run(
    models: Models,
    data: StudyData,
    cfg: ExperimentConfig,
    out_dir: Path | None,
    judge: DigitClassifier | None = None,
    *,
    figures: bool = True,
) -> ExperimentResult:
    """Walk every pair in `cfg.walks` with the VAE at each z in `cfg.recon_latents` it has,
    and the article's own walks between training images (`article_walks`); GIFs and strips
    only with `figures`.

    numbers: {"classifier": {"test_accuracy"}, "endpoints": {"1to0": {"start_index",
    "end_index"}}, "walks": {"1to0": {"4": walk_numbers(...), ...}, ...}, "article_walks":
    {...}}; z keys are strings so the dict is JSON-ready. Latent sizes without a trained VAE
    are skipped. Without `out_dir`: no figures and no article walks (no claim reads them).
    """
    classifier = needs_judge(judge, "interpolation")
    started = time.perf_counter()
    accuracy = classifier.score(data.x_test, data.y_test)
    numbers: dict[str, Any] = {
        "classifier": {"test_accuracy": accuracy},
        "pairs": cfg.walk_pairs,
        "endpoints": {},
        "walks": {},
        "others_passed": {},
    }
    others_by_pair: dict[DigitPair, ByZ] = {}
    draw = out_dir if figures else None
    drawn: list[Figure] = []
    if out_dir is not None:  # the article's own walks first: shown, never judged
        numbers["article_walks"], drawn = article_walks(models, data, cfg, classifier, draw)
    for a, b in cfg.walks:
        pair = DigitPair(a, b)
        key = pair.key
        i0, i1 = first_of_digit(data.y_test, a), first_of_digit(data.y_test, b)
        starts, ends = walk_pairs(data.y_test, a, b, cfg.walk_pairs, cfg.seed)
        numbers["endpoints"][key] = {"start_index": i0, "end_index": i1}
        numbers["walks"][key], numbers["others_passed"][key] = {}, {}
        others_by_pair[pair] = {}
        for z in cfg.recon_latents:
            model = models.get((WALK_ROLE, z))
            if model is None:
                continue
            frames = latent_walk(model, data.x_test[i0], data.x_test[i1], cfg.walk_steps)
            walk = walk_numbers(classifier.predict(frames).tolist())
            numbers["walks"][key][str(z)] = walk
            if draw is not None:
                drawn += _walk_figures(frames, walk, draw, a, b, z)
            read = walk_readings(
                model, data.x_test[starts], data.x_test[ends], cfg.walk_steps, classifier
            )
            others = others_passed(read, a, b)
            numbers["others_passed"][key][str(z)] = float(others.mean())
            others_by_pair[pair][str(z)] = mean_estimate(others)
    numbers[EVIDENCE] = InterpolationEvidence(others_by_pair).to_json()
    return ExperimentResult(NAME, numbers, drawn, time.perf_counter() - started)
