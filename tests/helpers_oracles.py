"""A study's numbers computed again from its saved models, written from the definitions with
torch.distributions and scikit-learn: nothing of vaelab's measures, losses or experiments."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Normal

from vaelab.core.folders import StudyFolder
from vaelab.models.networks import AutoEncoder
from vaelab.training.checkpoint import load_model


def saved_model(out: Path, results: dict[str, Any], kind: str, z: int | str) -> AutoEncoder:
    """The model of `kind` at latent `z`, seed 0, from the run folder the study's results name."""
    folder = results["training"][f"{kind}-z{z}-seed0"]["folder"]
    return load_model(StudyFolder(out).run(folder).path, "cpu")[0]


def log_px_given_z(model: AutoEncoder, z: Tensor, x: Tensor, y: Tensor | None) -> Tensor:
    """log p(x|z) summed over pixels (grey levels: the Bernoulli cross-entropy), (..., B)."""
    logits = model.decode(z, y)
    return Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1)


@torch.no_grad()
def reconstruction_error(model: AutoEncoder, x: Tensor, y: Tensor | None) -> tuple[float, float]:
    """Mean NLL (nats per image) and MSE (per pixel) of the decode of the posterior mean."""
    z = model.encode(x, y).mu
    nll = -log_px_given_z(model, z, x, y).mean().item()
    mse = (torch.sigmoid(model.decode(z, y)) - x).pow(2).mean().item()
    return nll, mse


@torch.no_grad()
def importance_sampled(
    model: AutoEncoder, x: Tensor, y: Tensor | None, k: int, replicates: int, seed: int = 123
) -> tuple[Tensor, Tensor]:
    """`replicates` independent draws of the mean over images of the K-sample IWAE bound and of
    the one-sample ELBO (C = 1), each (replicates,)."""
    mu, ln_var = model.encode(x, y)
    q, prior = Normal(mu, (0.5 * ln_var).exp()), Normal(0.0, 1.0)
    torch.manual_seed(seed)
    iwae, elbo = [], []
    for _ in range(replicates):
        z = q.sample((k,))  # (K, B, Z)
        log_w = log_px_given_z(model, z, x, y) + (prior.log_prob(z) - q.log_prob(z)).sum(-1)
        iwae.append((torch.logsumexp(log_w, 0) - math.log(k)).mean())
        elbo.append(log_w.mean())  # E_q[log p(x|z) + log p(z) - log q(z|x)], K draws
    return torch.stack(iwae).double(), torch.stack(elbo).double()


def agrees(found: float, draws: Tensor, draws_each: int, found_each: int) -> tuple[bool, float]:
    """Whether a Monte Carlo estimate that averaged `found_each` draws per image lies within
    5 standard errors of the mean of `draws` (each averaging `draws_each`), and that margin."""
    sd_one = draws.std().item() * math.sqrt(draws_each)  # the sd of a one-draw estimate
    margin = 5 * sd_one * math.sqrt(1 / found_each + 1 / (draws_each * len(draws)))
    return abs(found - draws.mean().item()) < margin, margin
