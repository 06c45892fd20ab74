"""M2 as a fourth model of the ordinary study: every experiment where it fits shows it beside
the article's three, and the claims keep exactly the article's comparisons."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch
from sklearn.metrics import v_measure_score

from conftest import copy_study
from helpers_oracles import reconstruction_error, saved_model
from test_study import COMPARISONS
from vaelab.core.config import load_preset
from vaelab.data.mnist import load_mnist
from vaelab.models.classifier import DigitClassifier
from vaelab.report.numbers import summary
from vaelab.study.grid import judge_folder, study_data, with_fingerprint
from vaelab.study.pipeline import run_study

LATENTS = ("2", "4", "16", "64")


@pytest.fixture(scope="module")
def m2_study(tmp_path_factory, tiny_preset_study):
    """The tiny preset with M2 added (classification weight 6: the old alpha 3 at its 1,000
    labels of 2,000 images), run over a copy of the session's tiny study: the article's
    models are reused, M2 trains and every experiment runs again."""
    folder = tmp_path_factory.mktemp("m2study")
    tiny = resources.files("vaelab.core.presets").joinpath("tiny.toml").read_text()
    text = tiny.replace('models = ["ae", "vae", "cvae"]', 'models = ["ae", "vae", "cvae", "m2"]')
    assert text != tiny
    preset = folder / "tiny_m2.toml"
    preset.write_text(text.replace("[train]\n", "[train]\nclassification_weight = 6.0\n"))
    out = copy_study(tiny_preset_study[0], folder / "study")
    run_study(str(preset), out, device="cpu")
    return out, json.loads((out / "results.json").read_text()), load_preset(str(preset))


def test_m2_is_measured_with_its_inferred_label_and_with_the_true_one(m2_study):
    out, results, cfg = m2_study
    data = study_data(cfg, load_mnist())
    e = results["experiments"]
    table = e["reconstruction"]["table"]
    assert e["reconstruction"]["modes"][-2:] == ["m2 (inferred label)", "m2 (true label)"]
    for mode in ("m2 (inferred label)", "m2 (true label)"):
        assert set(table[mode]) == set(LATENTS)
    # from each saved M2: the decode of the posterior mean given q(y|x)'s reading or the true label
    for z in LATENTS:
        model = saved_model(out, results, "m2", z)
        read = model.classify(data.x_test).argmax(-1)
        for mode, labels in (("m2 (inferred label)", read), ("m2 (true label)", data.y_test)):
            nll, mse = reconstruction_error(model, data.x_test, labels)
            assert table[mode][z]["nll"] == pytest.approx(nll, rel=1e-5), (mode, z)
            assert table[mode][z]["mse"] == pytest.approx(mse, rel=1e-5), (mode, z)
    # bounds on log p(x | y): with the true label; a label read from x itself bounds nothing
    assert all("elbo" in m for m in table["m2 (true label)"].values())
    assert not any("elbo" in m for m in table["m2 (inferred label)"].values())
    assert {"m2 (inferred label)", "m2 (true label)"} <= set(e["latent"]["models"])


def test_m2s_classifier_is_a_clustering_beside_k_means_on_its_codes(m2_study):
    out, results, cfg = m2_study
    data = study_data(cfg, load_mnist())
    for z in ("4", "16", "64"):
        rows = results["experiments"]["clustering"]["by_latent"][z]
        read = rows["m2 (q(y|x) argmax)"]
        assert len(read["v_measure"]["values"]) == 1  # one deterministic reading, no restarts
        digits = saved_model(out, results, "m2", z).classify(data.x_test).argmax(-1)
        expected = v_measure_score(data.y_test.numpy(), digits.numpy())
        assert read["v_measure"]["mean"] == pytest.approx(expected, rel=1e-9)
        assert len(rows["m2 (inferred label)"]["v_measure"]["values"]) == 4  # k-means restarts


def test_style_shows_m2_beside_the_cvae(m2_study):
    """The share of decodes read as the label given: each of the first six test images' code
    (taken with its true label) decoded with every label and read by the study's judge."""
    out, results, cfg = m2_study
    mnist = load_mnist()
    data = study_data(cfg, mnist)
    judge = DigitClassifier.load(judge_folder(with_fingerprint(cfg, mnist), out))
    x, y = data.x_test[:6], data.y_test[:6]
    style = results["experiments"]["style"]
    assert style["latents"] == style["m2"]["latents"] == [4, 16, 64]
    for z in ("4", "16", "64"):
        model = saved_model(out, results, "m2", z)
        code = model.encode(x, y).mu
        hits = [
            judge.predict(torch.sigmoid(model.decode(code, torch.full_like(y, d)))) == d
            for d in range(10)
        ]
        found = style["m2"]["by_latent"][z]["read_as_given"]["mean"]
        assert found == pytest.approx(np.mean(hits))
        assert (out / "figures" / f"style_m2_z{z}.png").is_file()


def test_claims_keep_the_articles_comparisons(m2_study):
    _, results, _ = m2_study
    made = {c["number"]: [x["name"] for x in c["comparisons"]] for c in results["claims"]}
    assert made == COMPARISONS


def test_the_report_shows_m2s_test_error(m2_study):
    """Each M2's test error, as its saved classifier reads the study's test images, in the
    training record and in the report's row for it."""
    out, results, cfg = m2_study
    data = study_data(cfg, load_mnist())
    html = (out / "report.html").read_text()
    assert "M2&#39;s classifier q(y|x)" in html or "M2's classifier q(y|x)" in html
    for z in LATENTS:
        read = saved_model(out, results, "m2", z).classify(data.x_test).argmax(-1)
        error = float((read != data.y_test).double().mean())
        assert results["training"][f"m2-z{z}-seed0"]["test_error"] == pytest.approx(error)
        row = f'<td class="text">M2</td><td>{z}</td><td>{summary(error, 4)}</td>'
        assert row in html, row
