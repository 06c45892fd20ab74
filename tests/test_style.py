"""Style versus digit: label swaps of the CVAE and the share read as the label given."""

import numpy as np
import pytest
import torch

from conftest import tiny_models, tiny_study
from vaelab.core.config import ExperimentConfig, ModelConfig
from vaelab.experiments import style
from vaelab.models.kinds import build_model


class ReadsBlock:
    """A judge for images whose label d lights pixel block d: reads the brightest block."""

    def predict(self, x):
        blocks = torch.as_tensor(x)[:, :780].reshape(len(x), 10, 78).sum(-1)
        return blocks.argmax(1).numpy()


class AlwaysReads:
    def __init__(self, digit):
        self.digit = digit

    def predict(self, x):
        return np.full(len(x), self.digit)


def label_only_cvae(latent: int = 4):
    """A CVAE whose image is set by its label alone: label d lights pixels 78 d .. 78 d + 77."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", latent=latent, embed=10)).eval()
    with torch.no_grad():
        model.dec_out.weight.zero_()
        model.dec_out.bias.fill_(-5.0)
        model.dec_label.weight.copy_(torch.eye(10) * 5)  # tanh(5) ~ 1: one-hot label features
        pattern = torch.zeros(784, 10)
        for d in range(10):
            pattern[78 * d : 78 * d + 78, d] = 10.0
        model.dec_label_out.weight.copy_(pattern)
    return model


def test_label_swaps_decode_one_code_with_every_label():
    model = tiny_models((4,))[("cvae", 4)]
    data = tiny_study(12)
    x, y = data.x_test[:3], data.y_test[:3]
    swaps = style.label_swaps(model, x, y)
    assert swaps.shape == (3, 10, 784)
    mu = model.encode(x, y).mu
    for d in (0, 7):
        expected = torch.sigmoid(model.decode(mu, torch.full((3,), d)))
        torch.testing.assert_close(swaps[:, d], expected, rtol=0, atol=1e-6)
    assert (swaps[:, 0] - swaps[:, 7]).abs().max() > 1e-3  # the label matters


def test_read_as_given_counts_decodes_read_as_their_label():
    readings = np.tile(np.arange(10), (2, 1))  # every decode reads as its label
    readings[1, :5] = 9  # image 1: labels 0-4 read as 9 (label 9 is its true label)
    share = style.read_as_given(readings, np.array([3, 9]))
    assert share["per_image"] == [1.0, 0.5]
    assert share["mean"] == 0.75
    assert share["swapped_only"] == pytest.approx((9 + 4) / 18)


def test_a_cvae_led_by_its_label_reads_as_every_label_given(tmp_path):
    models = {("cvae", 4): label_only_cvae(4)}
    cfg = ExperimentConfig(recon_latents=(4, 16))  # no CVAE at 16: skipped
    result = style.run(models, tiny_study(20), cfg, tmp_path, ReadsBlock())
    assert result.numbers["latents"] == [4]
    entry = result.numbers["by_latent"]["4"]
    assert entry["images"] == 6 and entry["decodes"] == 60
    assert entry["read_as_given"]["mean"] == 1.0
    assert entry["read_as_given"]["per_image"] == [1.0] * 6
    assert [f.path for f in result.figures] == ["figures/style_z4.png"]
    assert (tmp_path / "figures/style_z4.png").stat().st_size > 5000


def test_a_judge_that_ignores_the_image_reads_one_label_in_ten(tmp_path):
    data = tiny_study(20)
    result = style.run(tiny_models((4, 16)), data, ExperimentConfig(), tmp_path, AlwaysReads(3))
    assert result.numbers["latents"] == [4, 16]
    for z in ("4", "16"):
        share = result.numbers["by_latent"][z]["read_as_given"]
        assert share["per_image"] == [0.1] * 6 and share["mean"] == pytest.approx(0.1)
        true = data.y_test[:6].numpy()
        assert share["swapped_only"] == pytest.approx((true != 3).sum() / 54)
