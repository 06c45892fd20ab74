"""The convolutional family: shapes, sample dims, the label's wiring, initial weights, the
objective's value against a functional reference and its gradient against finite differences,
and a save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch.distributions import Bernoulli, Normal, kl_divergence
from torch.nn import functional as F

from vaelab.core.config import ModelConfig
from vaelab.core.errors import VaelabError
from vaelab.models.conv import ConvAE, ConvCVAE, ConvVAE
from vaelab.models.losses import elbo, objective

CLASSES = {"ae": ConvAE, "vae": ConvVAE, "cvae": ConvCVAE}


def make(kind: str, latent: int = 3, seed: int = 0, **kw) -> ConvAE:
    torch.manual_seed(seed)
    return CLASSES[kind](ModelConfig(latent=latent), **kw)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_shapes_and_leading_sample_dims(kind):
    model = make(kind)
    x, y = torch.rand(5, 784), torch.tensor([0, 1, -1, 9, 4])
    mu, ln_var = model.encode(x, y)
    assert mu.shape == (5, 3)
    assert (ln_var is None) == (kind == "ae")
    z = torch.randn(4, 2, 5, 3)  # two leading sample dims
    batched = model.decode(z, y)
    assert batched.shape == (4, 2, 5, 784)
    for i in range(4):
        for j in range(2):
            torch.testing.assert_close(batched[i, j], model.decode(z[i, j], y))
    recon = model.reconstruct(x, y)
    assert recon.shape == (5, 784) and recon.min() >= 0 and recon.max() <= 1
    torch.testing.assert_close(recon, torch.sigmoid(model.decode(mu, y)))
    torch.testing.assert_close(model.embed(x, y), mu)


def test_inference_tracks_no_gradient_and_training_mode_does():
    model = make("vae").eval()
    x = torch.rand(2, 784)
    assert not model.encode(x).mu.requires_grad
    assert model.train().encode(x).mu.requires_grad


def test_parameter_shapes_follow_the_two_stride_two_layers():
    model = make("cvae", latent=16)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes["enc_conv1.weight"] == (32, 1, 4, 4)
    assert shapes["enc_conv2.weight"] == (64, 32, 4, 4)
    assert shapes["enc_mu.weight"] == shapes["enc_ln_var.weight"] == (16, 64 * 7 * 7)
    assert shapes["dec_in.weight"] == (64 * 7 * 7, 16)
    assert shapes["dec_deconv1.weight"] == (64, 32, 4, 4)
    assert shapes["dec_deconv2.weight"] == (32, 1, 4, 4)
    assert shapes["enc_label.weight"] == (10, 32)
    assert shapes["dec_label.weight"] == (10, 64 * 7 * 7)
    assert "enc_ln_var.weight" not in dict(make("ae").named_parameters())


def test_glorot_uniform_weights_and_zero_biases():
    model = make("cvae", latent=16)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
            continue
        receptive = math.prod(p.shape[2:])  # 1 for a linear layer or a label table
        fans = (p.shape[0] + p.shape[1]) * receptive
        bound = math.sqrt(6 / fans)
        assert 0.9 * bound < p.abs().max() <= bound, name


def test_cvae_label_enters_both_networks_and_no_label_adds_nothing():
    model = make("cvae")
    x, z = torch.rand(3, 784), torch.randn(3, 3)
    none = torch.full((3,), -1)
    # no label: exactly the VAE with the same weights (the label tables add zeros)
    vae = make("vae")
    vae.load_state_dict({k: v for k, v in model.state_dict().items() if "label" not in k})
    torch.testing.assert_close(model.encode(x, none).mu, vae.encode(x).mu)
    torch.testing.assert_close(model.encode(x).mu, vae.encode(x).mu)  # None means no label
    torch.testing.assert_close(model.decode(z, none), vae.decode(z))
    # a label changes both the code and the image
    three, seven = torch.full((3,), 3), torch.full((3,), 7)
    assert not torch.allclose(model.encode(x, three).mu, model.encode(x, seven).mu)
    assert not torch.allclose(model.decode(z, three), model.decode(z, seven))
    # unlabelled images send no gradient into either label table
    model.train()
    model.decode(model.encode(x, none).mu, none).sum().backward()
    assert torch.count_nonzero(model.enc_label.weight.grad) == 0
    assert torch.count_nonzero(model.dec_label.weight.grad) == 0


def test_other_inputs_and_activations_are_one_clear_line():
    with pytest.raises(VaelabError, match="28 x 28"):
        ConvVAE(ModelConfig(input_dim=100))
    with pytest.raises(VaelabError, match="unknown activation"):
        ConvVAE(ModelConfig(), activation="gelu")


# --- the objective against references written from the equations ------------------------


def reference_forward(model: ConvAE, state: dict, x: torch.Tensor, y: torch.Tensor | None):
    """encode and decode with functional ops on `state`, independent of the module's code."""
    act = {"relu": F.relu, "tanh": torch.tanh, "softplus": F.softplus}[model.activation]
    s = state
    known = None if y is None else (y >= 0).to(x.dtype).unsqueeze(1)
    a1 = F.conv2d(x.view(-1, 1, 28, 28), s["enc_conv1.weight"], s["enc_conv1.bias"], 2, 1)
    if y is not None:  # one-hot y times the table: the label's bias per feature map
        onehot = F.one_hot(y.clamp(min=0), 10).to(x.dtype) * known
        a1 = a1 + (onehot @ s["enc_label.weight"])[:, :, None, None]
    a2 = F.conv2d(act(a1), s["enc_conv2.weight"], s["enc_conv2.bias"], 2, 1)
    h = act(a2).reshape(len(x), -1)
    mu = h @ s["enc_mu.weight"].T + s["enc_mu.bias"]
    ln_var = h @ s["enc_ln_var.weight"].T + s["enc_ln_var.bias"] if "enc_ln_var.bias" in s else None

    def decode(z: torch.Tensor) -> torch.Tensor:  # (k, B, Z) -> (k, B, 784)
        a0 = z @ s["dec_in.weight"].T + s["dec_in.bias"]
        if y is not None:
            a0 = a0 + onehot @ s["dec_label.weight"]
        d1 = F.conv_transpose2d(
            act(a0).reshape(-1, 64, 7, 7), s["dec_deconv1.weight"], s["dec_deconv1.bias"], 2, 1
        )
        out = F.conv_transpose2d(act(d1), s["dec_deconv2.weight"], s["dec_deconv2.bias"], 2, 1)
        return out.reshape(*z.shape[:-1], 784)

    return mu, ln_var, decode


def reference_objective(model, state, x, y, kl_weight, k, seed):
    """The article's objective with torch.distributions: mean over k and B of the summed
    Bernoulli NLL, plus C times the mean KL(N(mu, sigma^2) || N(0, I))."""
    mu, ln_var, decode = reference_forward(model, state, x, y)

    def nll(logits: torch.Tensor) -> torch.Tensor:  # grey levels: the unnormalised Bernoulli
        return -Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1).mean()

    if ln_var is None:
        return nll(decode(mu.unsqueeze(0)))
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((k, *mu.shape), generator=gen, dtype=mu.dtype)
    std = torch.exp(0.5 * ln_var)
    kl = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(-1).mean()
    return nll(decode(mu + eps * std)) + kl_weight * kl


def batch(n: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=gen, dtype=torch.float64)
    return x, torch.tensor([2, -1, 7][:n])


def vaelab_objective(model, x, y, seed: int, k: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    labels = y if model.uses_labels else None
    return objective(model, x, labels, kl_weight=0.1, n_samples=k, generator=gen).loss


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_objective_equals_a_functional_reference(kind, activation):
    model = make(kind, activation=activation).double().train()
    x, y = batch()
    state = {k: v.detach() for k, v in model.state_dict().items()}
    labels = y if model.uses_labels else None
    expected = reference_objective(model, state, x, labels, 0.1, 3, seed=5)
    torch.testing.assert_close(vaelab_objective(model, x, y, seed=5), expected)
    # the bound of the evaluation reads the same networks
    if model.is_variational:
        gen = torch.Generator().manual_seed(5)
        bound = elbo(model, x, labels, n_samples=3, generator=gen).mean()
        assert torch.isfinite(bound)
        torch.testing.assert_close(
            -bound, reference_objective(model, state, x, labels, 1.0, 3, seed=5)
        )


@pytest.mark.parametrize("kind", list(CLASSES))
def test_objective_gradient_matches_finite_differences(kind):
    """Central differences in float64 on a few entries of every parameter. Softplus keeps
    the objective smooth (a ReLU kink between the two evaluations would break the check)."""
    model = make(kind, activation="softplus").double().train()
    x, y = batch()
    loss = vaelab_objective(model, x, y, seed=3)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    pick = torch.Generator().manual_seed(0)
    h = 1e-6
    with torch.no_grad():
        for (name, p), g in zip(model.named_parameters(), grads, strict=True):
            flat, flat_grad = p.view(-1), g.reshape(-1)
            for i in torch.randint(0, flat.numel(), (4,), generator=pick).tolist():
                if "label" in name and i // p.shape[1] not in (2, 7):
                    i = 2 * p.shape[1] + i % p.shape[1]  # a row of a label the batch holds
                old = float(flat[i])
                flat[i] = old + h
                up = float(vaelab_objective(model, x, y, seed=3))
                flat[i] = old - h
                down = float(vaelab_objective(model, x, y, seed=3))
                flat[i] = old
                numeric = (up - down) / (2 * h)
                assert abs(numeric - float(flat_grad[i])) <= 1e-5 * (1 + abs(numeric)), name


def test_save_load_round_trip_gives_the_same_model():
    model = make("cvae", latent=5)
    restored = make("cvae", latent=5, seed=9)
    x, y = torch.rand(4, 784), torch.tensor([1, -1, 3, 0])
    assert not torch.equal(model.reconstruct(x, y), restored.reconstruct(x, y))
    blob = save_tensors({k: v.contiguous() for k, v in model.state_dict().items()})
    restored.load_state_dict(load_tensors(blob))
    assert torch.equal(model.reconstruct(x, y), restored.reconstruct(x, y))
