"""Losses against torch.distributions, and the bounds on a model whose answer is known."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaelab.core.config import ModelConfig
from vaelab.models.losses import (
    bernoulli_nll,
    elbo,
    gaussian_kl,
    gaussian_log_prob,
    iwae_bound,
    objective,
    sample_z,
)
from vaelab.models.networks import build_model


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 30.0))
def test_bernoulli_nll_matches_torch_distributions(seed, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 784, generator=g, dtype=torch.float64) * scale
    x = (torch.rand(4, 784, generator=g, dtype=torch.float64) > 0.5).double()
    expected = -Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected)


def test_bernoulli_nll_and_its_gradient_hold_for_extreme_float32_logits():
    logits = torch.tensor([[-300.0, -90.0, -20.0, 0.0, 20.0, 85.0, 300.0]], requires_grad=True)
    x = torch.tensor([[0.0, 0.3, 1.0, 0.5, 0.0, 0.7, 1.0]])
    expected = -Bernoulli(logits=logits.double(), validate_args=False).log_prob(x.double()).sum(-1)
    nll = bernoulli_nll(logits, x)
    torch.testing.assert_close(nll.double(), expected, rtol=1e-6, atol=1e-4)
    nll.sum().backward()
    torch.testing.assert_close(logits.grad, torch.sigmoid(logits.detach()) - x)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_gaussian_kl_and_log_prob_match_torch_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    ln_var = torch.randn(6, 5, generator=g, dtype=torch.float64)
    q = Normal(mu, torch.exp(0.5 * ln_var))
    expected = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, ln_var), expected)
    z = torch.randn(6, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gaussian_log_prob(z, mu, ln_var), q.log_prob(z).sum(-1))


def test_batched_samples_equal_one_decode_per_sample():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", latent=4))
    x = torch.rand(7, 784)
    out = objective(
        model, x, kl_weight=0.3, n_samples=5, generator=torch.Generator().manual_seed(1)
    )
    # the same noise drawn again, decoded one sample at a time as the article's loop does
    mu, ln_var = model.encode(x)
    z = sample_z(mu, ln_var, 5, torch.Generator().manual_seed(1))
    rec = sum(bernoulli_nll(model.decode(z[i]), x).mean() for i in range(5)) / 5
    kl = gaussian_kl(mu, ln_var).mean()
    torch.testing.assert_close(out.reconstruction, rec)
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.loss, rec + 0.3 * kl)


def test_ae_objective_is_the_reconstruction_nll():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="ae", latent=4))
    x = torch.rand(7, 784)
    out = objective(model, x)
    expected = bernoulli_nll(model.decode(model.encode(x).mu), x).mean()
    torch.testing.assert_close(out.loss, expected)
    assert out.kl.item() == 0


def _posterior_equals_prior_model():
    """A VAE with q(z|x) = N(0, I) and a decoder that ignores z: log p(x) is known exactly."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", latent=3))
    with torch.no_grad():
        for layer in (model.enc_mu, model.enc_ln_var, model.dec_hidden):
            layer.weight.zero_()
            layer.bias.zero_()
    return model


def test_bounds_are_exact_when_the_posterior_is_the_prior():
    model = _posterior_equals_prior_model()
    x = (torch.rand(4, 784) > 0.5).float()
    log_px = -bernoulli_nll(model.decode(torch.zeros(4, 3)), x)
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(elbo(model, x, n_samples=3, generator=gen), log_px)
    torch.testing.assert_close(iwae_bound(model, x, n_samples=50, chunk=16, generator=gen), log_px)


def _one_dimensional_vae():
    """A small untrained VAE with a 1-D latent, in float64: q(z|x) is not its p(z|x)."""
    torch.manual_seed(3)
    return build_model(ModelConfig(kind="vae", input_dim=8, hidden=6, latent=1)).double().eval()


def _exact_log_px(model, x):
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by Simpson's rule on a fine grid over [-15, 15],
    with torch.distributions' Bernoulli for p(x|z): nothing of vaelab's losses."""
    z = torch.linspace(-15, 15, 30001, dtype=torch.float64)
    logits = model.decode(z[:, None])  # (G, D)
    log_joint = Bernoulli(logits=logits[:, None, :]).log_prob(x[None]).sum(-1)  # (G, B)
    log_joint = log_joint + Normal(0.0, 1.0).log_prob(z)[:, None]
    density = log_joint.exp().numpy()
    return torch.tensor(
        [math.log(integrate.simpson(density[:, i], x=z.numpy())) for i in range(len(x))],
        dtype=torch.float64,
    )


def test_elbo_lies_below_the_exact_log_likelihood_and_iwae_climbs_to_it():
    model = _one_dimensional_vae()
    x = (torch.rand(4, 8, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    exact = _exact_log_px(model, x)
    gen = torch.Generator().manual_seed(0)
    e = elbo(model, x, n_samples=20_000, generator=gen)
    assert (e < exact - 0.05).all(), (e, exact)  # a real gap (0.12 to 0.57 nats here)
    repeats = x.repeat(200, 1)  # the bound's expectation over its own noise, per image
    gaps = []
    for k in (1, 10, 100, 3000):
        w = iwae_bound(model, repeats, n_samples=k, generator=gen).view(200, 4).mean(0)
        assert (w <= exact + 0.005).all(), (k, w, exact)  # a lower bound, up to its noise
        gaps.append((exact - w).max().item())
    # measured: 0.59, 0.063, 0.020, 0.0034 nats; a sign-flipped importance ratio overshoots
    assert gaps[0] > 0.3 and gaps[-1] < 0.01, gaps
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
