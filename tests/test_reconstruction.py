"""Experiment 1 on constructed models and a judge whose answers are known."""

import numpy as np
import pytest
import torch

from vaelab.core.config import ExperimentConfig, ModelConfig
from vaelab.evaluation.evidence import resamples
from vaelab.evaluation.measured import DigitPair
from vaelab.experiments import reconstruction
from vaelab.experiments.common import StudyData
from vaelab.models.kinds import build_model
from vaelab.models.networks import Posterior


class ReadsTheBrightestBlock:
    """A stand-in judge: image i of the data below lights block y; it reads the brightest block."""

    def predict_proba(self, x):
        blocks = torch.as_tensor(x)[:, :780].reshape(len(x), 10, 78).mean(-1)
        return torch.softmax(10 * blocks, dim=1).numpy()

    def predict(self, x):
        return self.predict_proba(x).argmax(-1)


def block_data(n=60):
    y = torch.arange(n) % 10
    x = torch.zeros(n, 784)
    for i, digit in enumerate(y):
        x[i, digit * 78 : (digit + 1) * 78] = 1.0
    return StudyData(x_test=x, y_test=y, x_train=x, y_train=y)


def test_wrong_labels_are_never_the_true_label_and_are_seeded():
    y = torch.arange(1000) % 10
    wrong = reconstruction.wrong_labels(y, seed=3)
    assert not torch.any(wrong == y)
    assert torch.equal(wrong, reconstruction.wrong_labels(y, seed=3))
    assert len(torch.unique(wrong)) == 10


class Identity(torch.nn.Module):
    """A 'model' whose code is its input and whose reconstruction is (almost exactly) x."""

    is_variational = False
    uses_labels = False

    def label_for(self, x, y):
        return y

    def encode(self, x, y=None):
        return Posterior(x, None)

    def decode(self, z, y=None):
        return torch.logit(z.clamp(1e-6, 1 - 1e-6))

    def reconstruct(self, x, y=None):
        return torch.sigmoid(self.decode(x))


def test_a_perfect_reconstruction_is_read_as_the_true_digit():
    data = block_data()
    m = reconstruction.measure_mode(Identity(), data, None, ReadsTheBrightestBlock(), None)
    assert m["read_as_true_digit"] == 1.0 and m["fours_read_as_nine"] == 0.0
    assert m["mse"] < 1e-10 and m["nll"] < 784 * 2e-6
    assert m["evidence"]["misread"]["value"] == 0.0 and set(m["evidence"]["misread"]["boot"]) == {0}


class ShiftsFoursToNines(Identity):
    """Reconstructs every 4 as a 9 (its block moved) and every other digit as itself."""

    def reconstruct(self, x, y=None):
        out = x.clone()
        fours = out[:, 4 * 78 : 5 * 78].sum(1) > 0
        out[fours] = torch.roll(out[fours], 5 * 78, dims=1)
        return out


def test_the_share_read_as_another_digit_counts_every_misread_image():
    data = block_data()  # 60 images, six of each digit
    m = reconstruction.measure_mode(
        ShiftsFoursToNines(), data, None, ReadsTheBrightestBlock(), None
    )
    assert m["fours_read_as_nine"] == 1.0 and m["read_as_true_digit"] == pytest.approx(54 / 60)
    misread = m["evidence"]["misread"]
    assert misread["value"] == pytest.approx(6 / 60)
    read = ReadsTheBrightestBlock().predict(ShiftsFoursToNines().reconstruct(data.x_test))
    wrong = (read != data.y_test.numpy()).astype(float)
    np.testing.assert_allclose(misread["boot"], wrong[resamples(60)].mean(1), rtol=1e-5)


def test_table_and_grids_cover_every_model_and_mode(tmp_path):
    torch.manual_seed(0)
    models = {
        (k, z): build_model(ModelConfig(kind=k, latent=z)).eval()
        for k in ("ae", "vae", "cvae")
        for z in (2, 4)
    }
    cfg = ExperimentConfig(recon_latents=(4,), iwae_samples=20, iwae_images=10, elbo_samples=2)
    result = reconstruction.run(models, block_data(), cfg, tmp_path, ReadsTheBrightestBlock())
    table = result.numbers["table"]
    assert list(table) == [mode.name for mode in reconstruction.MODES]
    assert list(table) == [
        "ae",
        "vae",
        "cvae (no label)",
        "cvae (true label)",
        "cvae (wrong label)",
    ]
    for mode, by_z in table.items():
        assert set(by_z) == {"2", "4"}
        for m in by_z.values():
            assert m["nll"] > 0 and 0 <= m["read_as_true_digit"] <= 1
            assert ("iwae" in m) == (mode not in ("ae", "cvae (wrong label)"))
            assert ("read_as_given_label" in m) == (mode == "cvae (wrong label)")
    pulls = result.numbers["label_pull"]
    assert set(pulls) == {"4to9", "2to7"} and set(pulls["4to9"]) == {"4"}
    assert pulls["2to7"]["4"]["images"] == 6
    assert [f.path for f in result.figures] == [
        "figures/reconstruction_4.png",
        "figures/reconstruction_2.png",
    ]
    assert all((tmp_path / f.path).read_bytes().startswith(b"\x89PNG") for f in result.figures)


def test_nll_of_an_untrained_model_is_near_784_log_2_on_half_grey_images():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="ae", latent=2)).eval()
    with torch.no_grad():
        model.dec_out.weight.zero_()  # every pixel predicted as 0.5
    data = block_data()
    m = reconstruction.measure_mode(model, data, None, ReadsTheBrightestBlock(), None)
    np.testing.assert_allclose(m["nll"], 784 * np.log(2), rtol=1e-5)
    np.testing.assert_allclose(m["mse"], (78 * 0.25 + 706 * 0.25) / 784, rtol=1e-5)


class PaintsTheLabelFaintly(Identity):
    """A CVAE stand-in: the reconstruction is x with the given label's block lit at 0.5."""

    uses_labels = True

    def reconstruct(self, x, y=None):
        out = x.clone()
        for i, label in enumerate(y.tolist()):
            if label >= 0:
                block = out[i, label * 78 : (label + 1) * 78]
                block.copy_(torch.maximum(block, torch.tensor(0.5)))
        return out


def test_label_pull_measures_a_shift_toward_the_given_label_that_never_wins():
    data = block_data()
    pull = reconstruction.label_pull(PaintsTheLabelFaintly(), data, 4, 9, ReadsTheBrightestBlock())
    assert pull["images"] == 6  # the 4s among 60 images
    given = pull["prob_given"]
    assert set(given) == {"wrong label", "no label", "true label"}
    assert all(len(p) == 6 for p in given.values())
    # softmax of 10 x block means: block 9 at 0.5 against block 4 at 1 and eight blocks at 0
    e = np.exp([10.0, 5.0, 0.0])
    np.testing.assert_allclose(given["wrong label"], e[1] / (e[0] + e[1] + 8), rtol=1e-3)
    np.testing.assert_allclose(given["no label"], 1 / (e[0] + 9), rtol=1e-3)
    assert given["true label"] == given["no label"]
    assert pull["read_as_given"] == {"wrong label": 0.0, "no label": 0.0, "true label": 0.0}
    assert pull["read_given_wrong"] == {"read as label": [0.0] * 6, "read as digit": [1.0] * 6}
    assert pull["mean_prob_given"]["wrong label"] == pytest.approx(e[1] / (e[0] + e[1] + 8), 1e-3)
    assert reconstruction.label_pull(PaintsTheLabelFaintly(), data, 4, 9, ReadsTheBrightestBlock())
    no_fours = StudyData(data.x_test[:4], data.y_test[:4], data.x_train, data.y_train)
    assert reconstruction.label_pull(PaintsTheLabelFaintly(), no_fours, 4, 9, None) is None


class DrawsTheLabel(Identity):
    """A CVAE stand-in that draws the label it is given and ignores the image."""

    uses_labels = True

    def reconstruct(self, x, y=None):
        out = x.clone()
        for i, label in enumerate(y.tolist()):
            if label >= 0:
                out[i] = 0.0
                out[i, label * 78 : (label + 1) * 78] = 1.0
        return out


def test_a_label_that_wins_is_read_instead_of_the_digit_and_its_estimates_say_so(tmp_path):
    data = block_data()
    pull = reconstruction.label_pull(DrawsTheLabel(), data, 4, 9, ReadsTheBrightestBlock())
    assert pull["read_given_wrong"] == {"read as label": [1.0] * 6, "read as digit": [0.0] * 6}
    assert pull["read_as_given"] == {"wrong label": 1.0, "no label": 0.0, "true label": 0.0}
    cfg = ExperimentConfig(recon_latents=(4,))
    models = {("cvae", 4): DrawsTheLabel()}
    _, evidence = reconstruction.label_pulls(models, data, cfg, ReadsTheBrightestBlock(), (4,))
    wins = evidence["wins"][DigitPair(4, 9)]["4"]
    assert wins.read_as_label["value"] == 1.0 and wins.read_as_digit["value"] == 0.0
    pull = evidence["pull"][DigitPair(4, 9)]["4"]
    assert pull.wrong_label["value"] == pytest.approx(1.0, abs=1e-3)
    assert set(evidence["wins"]) == {DigitPair(4, 9), DigitPair(2, 7)}


def test_numbers_for_the_claims_alone_leave_out_the_bounds_and_the_grids(tmp_path):
    from conftest import tiny_models, tiny_study
    from vaelab.core.config import ExperimentConfig
    from vaelab.experiments import reconstruction
    from vaelab.models.classifier import DigitClassifier

    data = tiny_study()
    judge = DigitClassifier(hidden=8, epochs=1).fit(data.x_train, data.y_train)
    cfg = ExperimentConfig(recon_latents=(4,), iwae_samples=0, elbo_samples=2)
    full = reconstruction.run(tiny_models((4,)), data, cfg, tmp_path, judge)
    bare = reconstruction.run(tiny_models((4,)), data, cfg, None, judge)
    assert bare.figures == [] and full.figures
    assert bare.numbers["evidence"] == full.numbers["evidence"]
    assert "elbo" in full.numbers["table"]["vae"]["4"]
    assert "elbo" not in bare.numbers["table"]["vae"]["4"]
    assert bare.numbers["table"]["vae"]["4"]["nll"] == full.numbers["table"]["vae"]["4"]["nll"]
