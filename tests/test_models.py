"""The three models: sizes from SPEC.md, the CVAE's label handling, initial weights."""

import math

import pytest
import torch
from torch.nn import functional as F

from vaelab.core.config import ModelConfig
from vaelab.core.errors import VaelabError
from vaelab.models.kinds import build_model
from vaelab.models.networks import count_parameters


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


@pytest.mark.parametrize("z", [2, 16, 64])
def test_parameter_counts_match_the_article(z):
    ae = linear(784, 128) + linear(128, z) + linear(z, 128) + linear(128, 784)
    vae = ae + linear(128, z)
    cvae = linear(784, 128) + 2 * linear(256, z) + 2 * 10 * 128 + linear(z, 128) + linear(256, 784)
    for kind, expected in (("ae", ae), ("vae", vae), ("cvae", cvae)):
        assert count_parameters(build_model(ModelConfig(kind=kind, latent=z))) == expected


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_shapes_and_leading_sample_dims(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, latent=3))
    x, y = torch.rand(5, 784), torch.tensor([0, 1, -1, 9, 4])
    mu, ln_var = model.encode(x, y)
    assert mu.shape == (5, 3)
    assert (ln_var is None) == (kind == "ae")
    z = torch.randn(4, 5, 3)
    batched = model.decode(z, y)
    assert batched.shape == (4, 5, 784)
    torch.testing.assert_close(batched[2], model.decode(z[2], y))
    recon = model.reconstruct(x, y)
    assert recon.shape == (5, 784) and recon.min() >= 0 and recon.max() <= 1
    torch.testing.assert_close(recon, torch.sigmoid(model.decode(mu, y)))


def test_cvae_without_label_feeds_a_zero_embedding():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", latent=4))
    x = torch.rand(3, 784)
    none = torch.full((3,), -1)
    assert torch.equal(model.enc_label(none), torch.zeros(3, 128))
    # the encoder's output equals the concat with an explicit zero vector
    h = torch.cat([torch.tanh(model.enc_hidden(x)), torch.zeros(3, 128)], dim=-1)
    torch.testing.assert_close(model.encode(x, none).mu, model.enc_mu(h))
    torch.testing.assert_close(model.encode(x).mu, model.enc_mu(h))  # y=None means no label
    # and unlabelled images send no gradient into either embedding table
    model.decode(model.encode(x, none).mu, none).sum().backward()
    assert torch.count_nonzero(model.enc_label.weight.grad) == 0
    assert torch.count_nonzero(model.dec_label.weight.grad) == 0


def test_cvae_label_changes_the_output_and_split_decoder_matches_concat():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", latent=4))
    z, y = torch.randn(2, 4), torch.tensor([3, 7])
    h = torch.cat([torch.tanh(model.dec_hidden(z)), torch.tanh(model.dec_label(y))], dim=-1)
    w = torch.cat([model.dec_out.weight, model.dec_label_out.weight], dim=1)  # (784, 256)
    torch.testing.assert_close(model.decode(z, y), F.linear(h, w, model.dec_out.bias))
    assert not torch.allclose(model.decode(z, y), model.decode(z, torch.tensor([4, 7])))


def test_xavier_uniform_weights_and_zero_biases():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", latent=16))
    for layer in (
        model.enc_hidden,
        model.enc_mu,
        model.enc_ln_var,
        model.dec_hidden,
        model.dec_out,
    ):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound  # uniform on the full range, not smaller
        assert torch.count_nonzero(layer.bias) == 0


def test_unknown_kind_is_a_user_error():
    with pytest.raises(VaelabError, match="unknown model"):
        build_model(ModelConfig(kind="gan"))


def test_cvae_decoder_halves_share_the_concat_layers_glorot_bound():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", latent=16))
    bound = math.sqrt(6 / (256 + 784))  # the article's Linear(128 + 128 -> 784)
    for weight in (model.dec_out.weight, model.dec_label_out.weight):
        assert bound * 0.9 < weight.abs().max() <= bound
