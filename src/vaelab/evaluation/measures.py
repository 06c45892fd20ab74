"""Test-set measures of a trained model: reconstruction error and, for VAEs, the bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from vaelab.models.losses import bernoulli_nll, elbo, gaussian_kl, iwae_bound
from vaelab.models.networks import AutoEncoder


def batches(x: Tensor, y: Tensor | None, size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Consecutive slices of (x, y) of `size` images; y may be None."""
    for start in range(0, len(x), size):
        yield x[start : start + size], None if y is None else y[start : start + size]


@torch.no_grad()
def per_image_error(
    model: AutoEncoder, x: Tensor, y: Tensor | None = None, batch: int = 1000
) -> tuple[Tensor, Tensor]:
    """Each image's Bernoulli NLL (nats) and MSE (per pixel) of its reconstruction from the
    mean: two (M,) float64 tensors."""
    nll, mse = [], []
    for xb, yb in batches(x, y, batch):
        yb = model.label_for(xb, yb)  # M2 without a label: the one its q(y|x) reads
        logits = model.decode(model.encode(xb, yb).mu, yb)
        nll.append(bernoulli_nll(logits, xb).double())
        mse.append((torch.sigmoid(logits) - xb).pow(2).mean(-1).double())
    return torch.cat(nll), torch.cat(mse)


def reconstruction_error(
    model: AutoEncoder, x: Tensor, y: Tensor | None = None, batch: int = 1000
) -> dict[str, float]:
    """Bernoulli NLL (nats per image) and MSE (per pixel) of reconstructions from the mean."""
    nll, mse = per_image_error(model, x, y, batch)
    return {"nll": float(nll.mean()), "mse": float(mse.mean())}


@torch.no_grad()
def variational_bounds(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    elbo_samples: int = 10,
    iwae_samples: int = 0,
    seed: int = 0,
    batch: int = 500,
) -> dict[str, float]:
    """KL, ELBO (C = 1) and, if iwae_samples > 0, the importance-weighted bound (nats/image)."""
    gen = torch.Generator(x.device).manual_seed(seed)
    totals = {"kl": 0.0, "elbo": 0.0, "iwae": 0.0}
    for xb, yb in batches(x, y, batch):
        totals["kl"] += gaussian_kl(*model.encode(xb, yb)).sum().item()
        totals["elbo"] += elbo(model, xb, yb, n_samples=elbo_samples, generator=gen).sum().item()
        if iwae_samples:
            totals["iwae"] += (
                iwae_bound(model, xb, yb, n_samples=iwae_samples, generator=gen).sum().item()
            )
    result = {key: value / len(x) for key, value in totals.items()}
    if not iwae_samples:
        del result["iwae"]
    return result


def evaluate(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    elbo_samples: int = 10,
    iwae_samples: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Every test measure that applies to `model`, per image, on all of `x`.

    A CVAE is measured twice: given each image's true label (the top-level numbers: KL of
    q(z|x,y), bounds on log p(x|y)) and given no label (under "without_label": q(z|x, no label),
    log p(x | no label)). `iwae_samples` is ignored for an AE, which has no posterior.
    """
    if not model.uses_labels:
        return _measures(model, x, None, elbo_samples, iwae_samples, seed)
    if y is None:
        raise ValueError("a CVAE is evaluated with the images' labels; y is None")
    result = _measures(model, x, y, elbo_samples, iwae_samples, seed)
    no_label = torch.full_like(y, -1)
    if model.has_classifier:  # M2 reads its own label: q(y|x)'s most probable one
        with torch.no_grad():
            no_label = model.label_for(x, no_label)
        result["classifier_error"] = float((no_label != y).float().mean())
    result["without_label"] = _measures(model, x, no_label, elbo_samples, iwae_samples, seed)
    return result


def _measures(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None,
    elbo_samples: int,
    iwae_samples: int,
    seed: int,
) -> dict[str, Any]:
    result: dict[str, Any] = reconstruction_error(model, x, y)
    if model.is_variational:
        result |= variational_bounds(
            model, x, y, elbo_samples=elbo_samples, iwae_samples=iwae_samples, seed=seed
        )
    return result
