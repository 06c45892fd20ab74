"""M2 as a fourth model of the ordinary study: every experiment where it fits shows it beside
the article's three, and the claims keep exactly the article's comparisons."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from test_study import COMPARISONS
from vaelab.study.pipeline import run_study

LATENTS = ("2", "4", "16", "64")


@pytest.fixture(scope="module")
def m2_study(tmp_path_factory):
    """The tiny preset with M2 added (classification weight 6: the old alpha 3 at its 1,000
    labels of 2,000 images)."""
    folder = tmp_path_factory.mktemp("m2study")
    tiny = resources.files("vaelab.core.presets").joinpath("tiny.toml").read_text()
    text = tiny.replace('models = ["ae", "vae", "cvae"]', 'models = ["ae", "vae", "cvae", "m2"]')
    assert text != tiny
    preset = folder / "tiny_m2.toml"
    preset.write_text(text.replace("[train]\n", "[train]\nclassification_weight = 6.0\n"))
    out = folder / "study"
    run_study(str(preset), out, device="cpu")
    return out, json.loads((out / "results.json").read_text())


def test_m2_is_measured_with_its_inferred_label_and_with_the_true_one(m2_study):
    _, results = m2_study
    e = results["experiments"]
    table = e["reconstruction"]["table"]
    assert e["reconstruction"]["modes"][-2:] == ["m2 (inferred label)", "m2 (true label)"]
    for mode in ("m2 (inferred label)", "m2 (true label)"):
        assert set(table[mode]) == set(LATENTS)
        assert all(0 < m["nll"] < 784 for m in table[mode].values())
    # bounds on log p(x | y): with the true label; a label read from x itself bounds nothing
    assert all("elbo" in m for m in table["m2 (true label)"].values())
    assert not any("elbo" in m for m in table["m2 (inferred label)"].values())
    assert {"m2 (inferred label)", "m2 (true label)"} <= set(e["latent"]["models"])


def test_m2s_classifier_is_a_clustering_beside_k_means_on_its_codes(m2_study):
    _, results = m2_study
    for z in ("4", "16", "64"):
        rows = results["experiments"]["clustering"]["by_latent"][z]
        read = rows["m2 (q(y|x) argmax)"]
        assert len(read["v_measure"]["values"]) == 1  # one deterministic reading, no restarts
        assert 0 <= read["v_measure"]["mean"] <= 1
        assert len(rows["m2 (inferred label)"]["v_measure"]["values"]) == 4  # k-means restarts


def test_style_shows_m2_beside_the_cvae(m2_study):
    out, results = m2_study
    style = results["experiments"]["style"]
    assert style["latents"] == style["m2"]["latents"] == [4, 16, 64]
    for z in ("4", "16", "64"):
        assert 0 <= style["m2"]["by_latent"][z]["read_as_given"]["mean"] <= 1
        assert (out / "figures" / f"style_m2_z{z}.png").is_file()


def test_claims_keep_the_articles_comparisons(m2_study):
    _, results = m2_study
    made = {c["number"]: [x["name"] for x in c["comparisons"]] for c in results["claims"]}
    assert made == COMPARISONS


def test_the_report_shows_m2s_test_error(m2_study):
    out, results = m2_study
    html = (out / "report.html").read_text()
    assert "M2&#39;s classifier q(y|x)" in html or "M2's classifier q(y|x)" in html
    errors = [t["test_error"] for t in results["training"].values() if t["kind"] == "m2"]
    assert len(errors) == 4 and all(0 <= v <= 1 for v in errors)
    shown = re.findall(r"<td>M2</td>|<td class=\"text\">M2</td>", html)
    assert shown
