"""Losses as pure functions of tensors (and, for the objectives, of a model and a batch).

Conventions: `x` holds pixel intensities in [0, 1], `(B, D)`; logits may carry leading
sample dims `(k, B, D)` and broadcast against `x`. Per-image values are returned as `(B,)`
(or `(k, B)`); the objectives average over the batch, as the article does.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from vaelab.models import kernels
from vaelab.models.networks import AutoEncoder

LOG_2PI = math.log(2 * math.pi)
IWAE_ROWS = 25_000  # decoded samples x images at once in the IWAE bound: ~80 MB per tensor


class Objective(NamedTuple):
    loss: Tensor  # scalar to minimise
    reconstruction: Tensor  # scalar: batch mean of the (sample-averaged) Bernoulli NLL; for
    # an AE trained on the mean squared error, that objective itself (`mse_objective`)
    kl: Tensor  # scalar: batch mean of KL(q(z|x) || N(0, I)); zero for the AE


class _BernoulliNLL(torch.autograd.Function):
    """sum_d softplus(l_d) - x_d l_d, with a backward that reuses the forward's exp.

    softplus(l) = log(1 + e^l), and d/dl = sigmoid(l) = 1 - 1 / (1 + e^l), so one exp per
    element serves both passes, where the stock loss's log-sigmoid is slow on a CPU
    (`benchmarks/grid_speed.py`, row "Bernoulli NLL", times the two). Above `limit` e^l would
    overflow; there softplus(l) = l to within e^-limit, added back when some logit is that
    large (always, on a GPU). Where autograd will want the gradient, on a CPU, the C kernel
    (`kernels.bernoulli_nll_with_grad`) writes the loss and sigmoid(l) - x in one pass instead.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, x: Tensor) -> Tensor:
        ctx.fused = False
        if ctx.needs_input_grad[0]:  # on a CPU, the loss and its gradient in one pass
            fused = kernels.bernoulli_nll_with_grad(logits, x)
            if fused is not None:
                ctx.fused = True
                ctx.save_for_backward(fused[1])
                return fused[0]
        limit = 80.0 if logits.element_size() <= 4 else 700.0
        one_plus_exp = logits.clamp(max=limit).exp_().add_(1.0)  # (..., B, D)
        nll = one_plus_exp.log().sum(-1) - torch.linalg.vecdot(logits, x.expand_as(logits))
        if logits.is_cuda or logits.max() > limit:  # on a GPU a check would cost a sync
            nll += (logits - limit).clamp_(min=0).sum(-1)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(one_plus_exp, x)
        return nll

    @staticmethod
    def backward(ctx: Any, grad_nll: Tensor) -> tuple[Tensor, None]:
        if ctx.fused:
            (grad,) = ctx.saved_tensors
            return grad * grad_nll.unsqueeze(-1), None
        one_plus_exp, x = ctx.saved_tensors
        grad = one_plus_exp.reciprocal().neg_().add_(1.0).sub_(x)  # sigmoid(l) - x
        return grad.mul_(grad_nll.unsqueeze(-1)), None


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """-log Bernoulli(x | sigmoid(logits)) summed over pixels: (..., B, D) -> (..., B).

    `x` broadcasts against `logits`, so k samples of logits share one copy of the batch.
    """
    return _BernoulliNLL.apply(logits, x)


def bernoulli_nll_consuming(logits: Tensor, x: Tensor) -> Tensor:
    """`bernoulli_nll` for inference, (k, B, D), (B, D) -> (k, B): `logits` may be overwritten.

    Outside autograd, on a CPU, one fused pass (`kernels.bernoulli_nll_`, within a few units in
    the last place of the torch path); else the torch path."""
    if logits.ndim == 3 and not torch.is_grad_enabled():
        rows = kernels.bernoulli_nll_(logits.unsqueeze(0), x.unsqueeze(0).contiguous(), 1.0)
        if rows is not None:
            return rows[0]
    return bernoulli_nll(logits, x)


def mse_objective(logits: Tensor, x: Tensor, batch_size: int | None = None) -> Tensor:
    """The AE loss of the article's notebook: `F.mean_squared_error(x, sigmoid(logits)) /
    batchsize`, the mean of (x - sigmoid(l))^2 over every pixel of the batch, divided again
    by the batch size (`batch_size`, default this batch's: the scale of a training step)."""
    divisor = len(x) if batch_size is None else batch_size
    return (x - torch.sigmoid(logits)).square().mean() / divisor


def gaussian_kl(mu: Tensor, ln_var: Tensor) -> Tensor:
    """KL(N(mu, exp(ln_var)) || N(0, I)) summed over latent dims, (B, Z) -> (B,).

    Closed form from Kingma & Welling (2013), appendix B.
    """
    return 0.5 * (mu.pow(2) + ln_var.exp() - ln_var - 1).sum(-1)


def gaussian_log_prob(z: Tensor, mu: Tensor, ln_var: Tensor) -> Tensor:
    """log N(z | mu, exp(ln_var)) summed over the last dim."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-ln_var) + ln_var + LOG_2PI).sum(-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def sample_z(mu: Tensor, ln_var: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k reparameterised samples z = mu + eps * exp(ln_var / 2): (B, Z) -> (k, B, Z)."""
    eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * ln_var)


def objective(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    kl_weight: float = 0.1,
    n_samples: int = 5,
    generator: torch.Generator | None = None,
    ce_weight: float = 0.0,
    labelled: tuple[Tensor, Tensor] | None = None,
    ae_loss: str = "bernoulli",
    batch_size: int | None = None,
) -> Objective:
    """The article's training objective.

    AE: Bernoulli NLL of the input, or with `ae_loss="mse"` the notebook's mean squared
    error (`mse_objective`, divided by `batch_size`, default len(x)). VAE / CVAE: the NLL
    averaged over `n_samples` draws of z, all decoded in one batched pass, plus `kl_weight`
    (the article's C) times the KL. M2: `m2_objective`, with `ce_weight` on the mean
    -log q(y|x) of `labelled` images.
    """
    if model.has_classifier:
        return m2_objective(
            model,
            x,
            y,
            kl_weight=kl_weight,
            n_samples=n_samples,
            ce_weight=ce_weight,
            generator=generator,
            labelled=labelled,
        )
    mu, ln_var = model.encode(x, y)
    if ln_var is None:
        logits = model.decode(mu, y)
        if ae_loss == "mse":
            reconstruction = mse_objective(logits, x, batch_size)
        else:
            reconstruction = bernoulli_nll(logits, x).mean()
        return Objective(reconstruction, reconstruction, torch.zeros_like(reconstruction))
    z = sample_z(mu, ln_var, n_samples, generator)  # (k, B, Z)
    reconstruction = bernoulli_nll(model.decode(z, y), x).mean()  # mean over k and B
    kl = gaussian_kl(mu, ln_var).mean()
    return Objective(reconstruction + kl_weight * kl, reconstruction, kl)


N_LABELS = 10


def m2_objective(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    kl_weight: float = 0.1,
    n_samples: int = 5,
    ce_weight: float = 0.0,
    generator: torch.Generator | None = None,
    labelled: tuple[Tensor, Tensor] | None = None,
) -> Objective:
    """M2's objective (Kingma et al. 2014, eq. 7-9): the mean bound per image of the batch
    plus `ce_weight` times the mean -log q(y|x) of labelled images.

    For every image and every label y', L(x, y') = the NLL under q(z|x,y') (mean over k
    draws) + C KL(q(z|x,y') || p(z)), all ten labels in one batched pass. A labelled image
    (y >= 0) scores L(x, y); an unlabelled one (y = -1 or None) sum_y' q(y'|x) L(x, y') -
    H(q(y|x)). The classification term is taken on `labelled` (images, labels) when given
    (the trainer's labelled images of the step), else on the batch's labelled images.
    Reconstruction and KL are reported as expected under the label each image is scored
    with (its own, or q(y|x)).
    """
    b = x.shape[0]
    y = torch.full((b,), -1, dtype=torch.long, device=x.device) if y is None else y
    mu, ln_var = model.encode_each_label(x)  # (10, B, Z), label-major
    z = sample_z(mu, ln_var, n_samples, generator)  # (k, 10, B, Z)
    nll = bernoulli_nll(model.decode_each_label(z), x).mean(0).T  # (B, 10)
    kl = gaussian_kl(mu, ln_var).T  # (B, 10)
    bound = nll + kl_weight * kl
    log_q = torch.log_softmax(model.classify(x), dim=-1)  # (B, 10)
    q = log_q.exp()
    known = y >= 0
    own = F.one_hot(y.clamp(min=0), N_LABELS).to(x.dtype)
    weight = torch.where(known.unsqueeze(1), own, q)  # which labels each image is scored with
    entropy = -(q * log_q).sum(1)
    per_image = (weight * bound).sum(1) - torch.where(known, 0.0, entropy)
    if labelled is None:
        ce = -(own * log_q).sum(1)[known]
    else:
        x_l, y_l = labelled
        ce = F.cross_entropy(model.classify(x_l), y_l, reduction="none")
    loss = per_image.mean() + ce_weight * (ce.mean() if len(ce) else ce.sum())
    reconstruction = (weight * nll).sum(1).mean()
    return Objective(loss, reconstruction, (weight * kl).sum(1).mean())


def elbo(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The evidence lower bound with C = 1, per image (B,), in nats (higher is better)."""
    y = model.label_for(x, y)
    mu, ln_var = model.encode(x, y)
    z = sample_z(mu, ln_var, n_samples, generator)
    return -bernoulli_nll(model.decode(z, y), x).mean(0) - gaussian_kl(mu, ln_var)


def iwae_bound(
    model: AutoEncoder,
    x: Tensor,
    y: Tensor | None = None,
    *,
    n_samples: int = 1000,
    chunk: int = 250,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance-weighted lower bound on log p(x) (Burda et al. 2015), per image (B,).

    log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with z_k ~ q(z|x); the K samples are drawn
    in chunks so memory stays at chunk * B * D floats, with chunk * B at most IWAE_ROWS.
    """
    y = model.label_for(x, y)
    mu, ln_var = model.encode(x, y)
    chunk = max(1, min(chunk, IWAE_ROWS // max(len(x), 1)))
    log_w = []
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        z = sample_z(mu, ln_var, k, generator)  # (k, B, Z)
        log_px_z = -bernoulli_nll_consuming(model.decode(z, y), x)  # (k, B)
        log_w.append(log_px_z + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, ln_var))
    return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(n_samples)
