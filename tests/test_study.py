"""The whole study on real MNIST with the tiny preset: every figure, table and number."""

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest
import torch
from markupsafe import escape

from conftest import copy_study
from helpers_oracles import agrees, importance_sampled, reconstruction_error, saved_model
from vaelab.claims.verdicts import VERDICTS, judge_claims
from vaelab.core.config import load_preset
from vaelab.data.mnist import load_mnist
from vaelab.evaluation.measured import DigitPair, Measured
from vaelab.experiments.reconstruction import wrong_labels
from vaelab.report.page import write_report
from vaelab.report.sentences import plain_sentence
from vaelab.study.grid import study_data
from vaelab.study.pipeline import run_study


@pytest.fixture(scope="module")
def tiny_study(tiny_preset_study, tmp_path_factory) -> tuple[Path, float]:
    source, seconds = tiny_preset_study
    return copy_study(source, tmp_path_factory.mktemp("study") / "study"), seconds


def test_results_json_holds_every_number(tiny_study):
    out, _ = tiny_study
    results = json.loads((out / "results.json").read_text())
    cfg = load_preset("tiny")
    assert len(results["training"]) == 12
    assert all(t["epochs"] == 1 and t["seconds"] > 0 for t in results["training"].values())
    e = results["experiments"]
    table = e["reconstruction"]["table"]
    assert set(table) == {"ae", "vae", "cvae (no label)", "cvae (true label)", "cvae (wrong label)"}
    for mode, by_z in table.items():
        assert set(by_z) == {"2", "4", "16", "64"}
        assert all(
            ("iwae" in m) == (mode not in ("ae", "cvae (wrong label)")) for m in by_z.values()
        )
    walks = e["interpolation"]["walks"]
    assert set(walks) == {"1to0", "3to7"}
    assert all(
        len(w["readings"]) == cfg.experiments.walk_steps for b in walks.values() for w in b.values()
    )
    assert set(e["latent"]["models"]) == {"ae", "vae", "cvae (no label)", "cvae (true label)"}
    for z in ("4", "16", "64"):
        rows = e["clustering"]["by_latent"][z]
        assert "pixels" in rows and len(rows["ae"]["v_measure"]["values"]) == 4
    assert [c["number"] for c in results["claims"]] == list(range(1, 9))
    assert all(c["verdict"] in VERDICTS and c["reason"] for c in results["claims"])


def mode_labels(mode: str, y: torch.Tensor, seed: int) -> torch.Tensor | None:
    """The labels each mode of the reconstruction table gives its model, from the mode's name."""
    given = {"no label": torch.full_like(y, -1), "true label": y, "wrong label": None}
    if "(" not in mode:
        return None
    found = given[mode.split("(")[1].rstrip(")")]
    return wrong_labels(y, seed) if found is None else found


def test_reconstruction_errors_are_the_saved_models_on_the_test_images(tiny_study):
    """Every model's NLL and MSE in the table against the same computed from its saved weights
    with torch.distributions' Bernoulli, on the study's test images, given each mode's labels."""
    out, _ = tiny_study
    cfg = load_preset("tiny")
    data = study_data(cfg, load_mnist())
    results = json.loads((out / "results.json").read_text())
    table = results["experiments"]["reconstruction"]["table"]
    for mode, by_z in table.items():
        labels = mode_labels(mode, data.y_test, cfg.experiments.seed)
        for z, found in by_z.items():
            model = saved_model(out, results, mode.split(" ")[0], z)
            nll, mse = reconstruction_error(model, data.x_test, labels)
            assert found["nll"] == pytest.approx(nll, rel=1e-5), (mode, z)
            assert found["mse"] == pytest.approx(mse, rel=1e-5), (mode, z)


def test_the_bounds_agree_with_importance_sampling_written_from_torch_distributions(tiny_study):
    """The IWAE bound (K = 100) and the ELBO on the first `iwae_images` test images against 8
    independent draws of each, to within 5 standard errors of their noise."""
    out, _ = tiny_study
    cfg = load_preset("tiny")
    e, data = cfg.experiments, study_data(cfg, load_mnist())
    results = json.loads((out / "results.json").read_text())
    table = results["experiments"]["reconstruction"]["table"]
    x = data.x_test[: e.iwae_images]
    for mode in ("vae", "cvae (no label)", "cvae (true label)"):
        labels = mode_labels(mode, data.y_test[: e.iwae_images], e.seed)
        for z, found in table[mode].items():
            model = saved_model(out, results, mode.split(" ")[0], z)
            iwae, elbo = importance_sampled(model, x, labels, e.iwae_samples, replicates=8)
            ok, margin = agrees(found["iwae"], iwae, draws_each=1, found_each=1)
            assert ok, (mode, z, found["iwae"], iwae.mean(), margin)
            ok, margin = agrees(found["elbo_on_iwae_images"], elbo, e.iwae_samples, e.elbo_samples)
            assert ok, (mode, z, found["elbo_on_iwae_images"], elbo.mean(), margin)


def test_report_is_self_contained_and_shows_every_figure(tiny_study):
    out, _ = tiny_study
    html = (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    figures = [f for group in results["figures"].values() for f in group]
    # recon, walks (the seeded pairs' and the article's own), latent, boxes, style, the
    # rate-distortion plane of the VAE and the CVAE
    assert len(figures) == 2 + 2 * 3 * 2 * 2 + 1 + 3 + 3 + 2
    for f in figures:
        assert (out / f["path"]).stat().st_size > 0
        assert str(escape(f["title"])) in html
    # the figures that back claims (grids, scatter, box plots), inlined once each as CSS
    assert html.count('url("data:image/png;base64,') == 2 + 1 + 3
    # walk strips, style, rate-distortion, training curves, a forest plot per claim
    assert html.count('src="data:image/png;base64,') >= 12 + 3 + 2 + 1 + 8
    assert html.count('src="data:image/gif;base64,') == 12
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    for heading in (
        "Experiment 1",
        "Experiment 2",
        "Experiment 3",
        "Experiment 4",
        "the 2018 article's eight claims, checked",
        "Time taken",
        "Training",
    ):
        assert heading in html
    assert html.count("<table") >= 12


def test_report_shows_each_comparison_per_seed_and_says_when_it_is_provisional(
    tiny_study, tmp_path
):
    out, _ = tiny_study
    results = json.loads((out / "results.json").read_text())
    html = (out / "report.html").read_text()
    assert "Provisional: one seed" in html and results["claims"][0]["provisional"]
    assert {c["verdict"] for c in results["claims"]} == {"too few seeds"}
    shown = sum(len(c["comparisons"]) for c in results["claims"])
    assert shown > 8 and html.count('title="seed 0: ') == shown  # each comparison's seed
    first_table = html.index("<table")
    assert html.index('<table class="matrix" id="verdicts"') == first_table  # verdicts first
    for claim in results["claims"]:
        assert f'href="#claim-{claim["number"]}"' in html
        assert f'id="claim-{claim["number"]}"' in html
        assert str(escape(plain_sentence(claim, 2))) in html
    numbers = results["per_seed"]["0"]
    results["claims"] = [c.to_dict() for c in judge_claims([numbers] * 3, seeds=[0, 1, 2])]
    three = write_report(results, out / "three_seeds.html").read_text()
    assert "Provisional" not in three and "seed 2: " in three
    assert three.count('title="seed 1: ') == shown
    assert three.count("with 3 seeds it decides effects above") == 8
    assert '3 of 3 <span class="note">(sign test p = 0.125)' in three


def test_a_second_run_reuses_every_model(tiny_study):
    out, first = tiny_study
    started = time.perf_counter()
    run_study("tiny", out, device="cpu")
    results = json.loads((out / "results.json").read_text())
    assert all(t["reused"] for t in results["training"].values())
    assert results["timings"]["steps"]["training"]["seconds"] < 5
    assert time.perf_counter() - started < first


def test_changing_a_setting_retrains_only_the_models_it_affects(tiny_study, tmp_path):
    out, _ = tiny_study
    text = (Path(__file__).parents[1] / "src/vaelab/core/presets/tiny.toml").read_text()
    changed = tmp_path / "fewer_labels.toml"
    changed.write_text(
        text.replace("n_labelled = 1000", "n_labelled = 500").replace(
            'name = "tiny"', 'name = "<script>alert(1)</script>"'
        )
    )
    run_study(str(changed), out, device="cpu")
    results = json.loads((out / "results.json").read_text())
    retrained = {k for k, t in results["training"].items() if not t["reused"]}
    assert retrained == {f"cvae-z{z}-seed0" for z in (2, 4, 16, 64)}
    html = (out / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


COMPARISONS = {
    1: [
        *(
            f"{m}: NLL falls from z={a} to z={b}"
            for m in ("ae", "vae", "cvae (no label)", "cvae (true label)")
            for a, b in ((4, 16), (16, 64))
        ),
        *(
            f"{m}: more read as another digit at z=4 than at z={z}"
            for m in ("ae", "vae", "cvae (no label)")
            for z in (16, 64)
        ),
    ],
    2: [f"z={z}: {m} NLL below the AE's" for z in (4, 16, 64) for m in ("vae", "cvae (no label)")],
    3: [
        *(
            f"z={z}: NLL lower with the true label than with {o}"
            for z in (4, 16, 64)
            for o in ("no label", "a wrong label")
        ),
        *(
            f"z={z}: test {d}s given label {w} lean toward {w}"
            for d, w in ((4, 9), (2, 7))
            for z in (4, 16, 64)
        ),
        *(
            f"z={z}: test {d}s given label {w} come back as {w}"
            for d, w in ((4, 9), (2, 7))
            for z in (4, 16, 64)
        ),
    ],
    4: [
        f"{a} → {b}: more other digits passed at z={lo} than at z={hi}"
        for a, b in ((1, 0), (3, 7))
        for lo, hi in ((4, 16), (16, 64))
    ],
    5: [
        *(f"{m} centre near the origin" for m in ("vae", "cvae (no label)")),
        *(f"ae centre farther off the origin than {m}'s" for m in ("vae", "cvae (no label)")),
    ],
    6: [f"ae separates digits better than {m}" for m in ("vae", "cvae (no label)")],
    7: [
        *(f"z=4: ae scores higher than {m}" for m in ("vae", "cvae (no label)")),
        *(
            f"z={z}: {m} scores higher than ae"
            for z in (16, 64)
            for m in ("vae", "cvae (no label)")
        ),
    ],
    8: [f"z={z}: cvae (no label) scores higher than vae" for z in (4, 16, 64)],
}


def test_a_real_studys_numbers_read_as_typed_records_that_write_them_back(tiny_study):
    """Each seed's numbers read into the records the rules take, every record filled, and
    each record's JSON is the evidence the experiment wrote, key for key."""
    out, _ = tiny_study
    results = json.loads((out / "results.json").read_text())
    for numbers in results["per_seed"].values():
        m = Measured.read(numbers)
        assert m.shown_latents == ("4", "16", "64")
        for name, record in (
            ("reconstruction", m.reconstruction),
            ("interpolation", m.interpolation),
            ("latent", m.latent),
            ("clustering", m.clustering),
        ):
            assert record.to_json() == numbers[name]["evidence"]
            empty = [f.name for f in dataclasses.fields(record) if not getattr(record, f.name)]
            assert not empty, f"{name}: {empty} read empty"
        assert set(m.first_walks) == {DigitPair(1, 0), DigitPair(3, 7)}
        assert set(m.style) == {"4", "16", "64"}
        assert all(0 <= s.read_as_given <= 1 and s.images > 0 for s in m.style.values())


def test_a_real_study_makes_every_comparison_of_every_claim(tiny_study):
    """Pinned: a renamed key in an experiment's numbers can no longer drop a comparison."""
    out, _ = tiny_study
    results = json.loads((out / "results.json").read_text())
    made = {c["number"]: [x["name"] for x in c["comparisons"]] for c in results["claims"]}
    assert made == COMPARISONS
    context = [x["name"] for x in results["claims"][2]["context"]]
    assert context == [
        f"style, z={z}: codes decoded with each label, read as that label" for z in (4, 16, 64)
    ]
    context = [x["name"] for x in results["claims"][0]["context"]]
    assert context == [
        f"{m}: share of test 4s read as 9 (the article's example)"
        for m in ("ae", "vae", "cvae (no label)")
    ]
