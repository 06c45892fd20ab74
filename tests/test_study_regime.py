"""The article's regime in a study: claims judged again on training images, with the AE
trained on the other loss, and beside a study of the same models trained for longer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from helpers_reliability import MICRO_STUDY, write_npz
from vaelab.core.config import load_toml
from vaelab.data.mnist import load_mnist
from vaelab.models.losses import bernoulli_nll
from vaelab.study import regimes
from vaelab.study.grid import ae_variant_runs, study_data, train_subset, with_fingerprint
from vaelab.study.pipeline import run_study
from vaelab.study.regimes import deciding, sentence
from vaelab.study.variants import changes, replace_model
from vaelab.training import checkpoint

REGIME = """eval_images = ["test", "train"]
ae_losses = ["bernoulli", "mse"]
converged_study = "conv"
"""


def _toml(root: Path, length: str, name: str) -> Path:
    data = root / "m.npz"
    if not data.exists():
        write_npz(data)
    text = MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n')
    text = text.replace("latents = [2, 4]\n", "latents = [2, 4]\nseeds = [0, 1]\n" + REGIME, 1)
    text = text.replace("epochs = 2\n", f"{length}\n", 1)
    path = root / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def regime(tmp_path_factory):
    root = tmp_path_factory.mktemp("regime")
    short = _toml(root, "steps = 9", "short")  # 1.5 epochs of 6 steps
    run_study(str(short), root / "short", console=Console(file=io.StringIO(), width=200))
    first = json.loads((root / "short" / "results.json").read_text())
    conv = _toml(root, "epochs = 4", "conv")
    run_study(str(conv), root / "conv", console=Console(file=io.StringIO(), width=200))
    run_study(str(short), root / "short", console=Console(file=io.StringIO(), width=200))
    second = json.loads((root / "short" / "results.json").read_text())
    return root, short, first, second


def test_the_claims_are_judged_again_on_a_seeded_subset_of_training_images(regime):
    root, toml, results, _ = regime
    sets = results["evaluation"]["sets"]
    assert results["evaluation"]["headline"] == "test" and list(sets) == ["test", "train"]
    assert sets["test"]["claims"] == "claims"  # the headline verdicts
    assert "100 of the 300 training images" in sets["train"]["images"]
    train = sets["train"]
    assert [c["number"] for c in train["claims"]] == list(range(1, 9))
    assert set(train["changes"]) == {"verdicts", "outcomes", "largest_effect_change", "summary"}
    # the images measured are the training images a seeded draw picks, labels with them
    cfg = load_toml(toml)
    mnist = load_mnist(root / "m.npz")
    data = study_data(cfg, mnist, "train")
    chosen = np.sort(np.random.default_rng([0, 1]).choice(300, 100, replace=False))
    np.testing.assert_array_equal(train_subset(300, 100, 0), chosen)
    assert torch.equal(data.x_test, torch.from_numpy(mnist.x_train[chosen] / np.float32(255)))
    assert torch.equal(data.y_test, torch.from_numpy(mnist.y_train[chosen]))
    nll = train["experiments"]["reconstruction"]["table"]["vae"]["2"]["nll"]["mean"]
    model = checkpoint.load_model(next((root / "short" / "models").glob("vae-z2-s0-*")))[0]
    with torch.no_grad():
        mine = [bernoulli_nll(model.decode(model.encode(data.x_test).mu), data.x_test).mean()]
    seed1 = next((root / "short" / "models").glob("vae-z2-s1-*"))
    model = checkpoint.load_model(seed1)[0]
    with torch.no_grad():
        mine.append(bernoulli_nll(model.decode(model.encode(data.x_test).mu), data.x_test).mean())
    assert nll == pytest.approx(float(sum(mine) / 2), rel=1e-5)


def test_the_claims_are_judged_again_with_the_ae_on_the_other_loss(regime):
    root, toml, results, _ = regime
    losses = results["ae_losses"]
    assert losses["headline"] == "bernoulli" and list(losses["sets"]) == ["bernoulli", "mse"]
    cfg = with_fingerprint(load_toml(toml), load_mnist(root / "m.npz"))
    runs = ae_variant_runs(cfg, root / "short")["mse"]
    for seed in (0, 1):
        for z in (2, 4):
            saved = checkpoint.read_run_config(runs[seed][("ae", z)])
            assert (saved.train.ae_loss, saved.train.seed) == ("mse", seed)
    assert results["training"]["ae-z2-seed0-mse"]["ae_loss"] == "mse"
    claim_2 = next(c for c in losses["sets"]["mse"]["claims"] if c["number"] == 2)
    compared = next(c for c in claim_2["comparisons"] if c["name"] == "z=4: vae NLL below the AE's")
    data = study_data(cfg, load_mnist(root / "m.npz"))
    nll = []
    for seed in (0, 1):
        model = checkpoint.load_model(runs[seed][("ae", 4)])[0]
        with torch.no_grad():
            logits = model.decode(model.encode(data.x_test).mu)
        nll.append(float(bernoulli_nll(logits, data.x_test).mean()))
    assert compared["sides"]["ae"] == pytest.approx(sum(nll) / 2, rel=1e-5)  # the MSE AE's
    headline = next(c for c in results["claims"] if c["number"] == 2)
    same = next(c for c in headline["comparisons"] if c["name"] == compared["name"])
    assert same["sides"]["vae"] == compared["sides"]["vae"]  # the VAE is not run again
    assert same["sides"]["ae"] != compared["sides"]["ae"]


def test_without_the_converged_study_the_results_say_how_to_make_it(regime):
    root, _, first, _ = regime
    regimes = first["regimes"]
    assert regimes["available"] is False
    assert regimes["converged_study"] == str((root / "conv").resolve())
    assert f"vaelab study --preset converged --out {(root / 'conv').resolve()}" in regimes["how"]


def test_with_the_converged_study_each_claim_is_tabled_at_both_lengths(regime):
    root, _, _, results = regime
    regimes = results["regimes"]
    assert regimes["available"] is True
    labels = [c["label"] for c in regimes["columns"]]
    assert labels == [
        "after the article's training, AE on the Bernoulli NLL",
        "after the article's training, AE on the MSE",
        "at convergence, AE on the Bernoulli NLL",
        "at convergence, AE on the MSE",
    ]
    conv = json.loads((root / "conv" / "results.json").read_text())
    columns = [
        results["claims"],
        results["ae_losses"]["sets"]["mse"]["claims"],
        conv["claims"],
        conv["ae_losses"]["sets"]["mse"]["claims"],
    ]
    assert [row["claim"] for row in regimes["rows"]] == list(range(1, 9))
    for row in regimes["rows"]:
        verdicts = [
            next(c for c in col if c["number"] == row["claim"])["verdict"] for col in columns
        ]
        assert [cell["verdict"] for cell in row["cells"]] == verdicts
        assert row["sentence"].endswith(".") and row["sentence"][0].isupper()
    html = (root / "short" / "report.html").read_text()
    assert "After the article's 1000 steps and at convergence" in html
    assert "Judged again on a seeded subset of 100 of the 300 training images" in html


def test_replace_model_takes_every_ae_subtree_from_the_other_numbers():
    numbers = {"a": {"ae": 1, "vae": 2, "deep": {"ae": {"x": 3}, "cvae": 4}}, "ae": 5, "n": 6}
    other = {"a": {"ae": 10, "deep": {"ae": {"x": 30}}}, "ae": 50, "n": 60}
    assert replace_model(numbers, other) == {
        "a": {"ae": 10, "vae": 2, "deep": {"ae": {"x": 30}, "cvae": 4}},
        "ae": 50,
        "n": 6,  # not under "ae": kept
    }
    assert replace_model(numbers, {}) == numbers  # nothing to take: unchanged


def _claim(number, verdict, *comparisons):
    return {
        "number": number,
        "verdict": verdict,
        "comparisons": [
            {"name": n, "outcome": o, "effect": e, "interval": [lo, hi], "unit": "nats"}
            for n, o, e, lo, hi in comparisons
        ],
    }


def test_changes_name_each_moved_verdict_and_outcome_and_the_largest_effect_change():
    a = [
        _claim(1, "supported", ("x", "supports", 2.0, 1.0, 3.0), ("y", "supports", 5.0, 4.0, 6.0)),
        _claim(2, "inconclusive", ("w", "inconclusive", 0.1, -1.0, 1.2)),
    ]
    b = [
        _claim(1, "parts disagree", ("x", "contradicts", -2.0, -3.0, -1.0),
               ("y", "supports", 5.5, 4.5, 6.5)),
        _claim(2, "inconclusive", ("w", "inconclusive", 0.2, -1.0, 1.4)),
    ]  # fmt: skip
    found = changes(a, b)
    assert found["verdicts"] == [{"claim": 1, "from": "supported", "to": "parts disagree"}]
    assert found["outcomes"] == [
        {"claim": 1, "comparison": "x", "from": "supports", "to": "contradicts"}
    ]
    largest = found["largest_effect_change"]
    assert (largest["comparison"], largest["change"], largest["in_interval_widths"]) == (
        "x", -4.0, 2.0,
    )  # fmt: skip
    assert "1 verdict changes (claim 1 supported → parts disagree)" in found["summary"]
    assert changes(a, a)["summary"].startswith("No verdict and no comparison's outcome changes")


def test_a_claim_read_with_either_ae_loss_is_one_sentence_as_results_json_holds_it():
    columns = [
        {"ae_loss": loss, "short": short}
        for short in (True, False)
        for loss in ("mse", "bernoulli")
    ]
    cells = [{"verdict": v} for v in ("supported", "inconclusive", "supported", "inconclusive")]
    assert regimes._sentences(columns, cells) == (
        "Holds at both; with the AE on the Bernoulli NLL: inconclusive at both."
    )


def test_the_sentence_and_the_deciding_effect_of_a_claim():
    assert sentence("supported", "supported") == "holds at both"
    assert sentence("supported", "inconclusive").startswith(
        "holds only after the article's short training"
    )
    assert sentence("contradicted", "supported").startswith("holds only at convergence")
    assert sentence("contradicted", "contradicted") == "fails at both"
    assert sentence("inconclusive", "parts disagree") == (
        "inconclusive after the article's training, parts disagree at convergence"
    )
    supported = _claim(1, "supported", ("x", "supports", 2.0, 1.0, 3.0),
                       ("y", "supports", 1.1, 0.1, 2.1))  # fmt: skip
    assert deciding(supported)["name"] == "y"  # its closest call
    split = _claim(
        2,
        "parts disagree",
        ("x", "supports", 2.0, 1.0, 3.0),
        ("y", "contradicts", -1.0, -1.5, -0.5),
        ("z", "contradicts", -3, -3.1, -2.9),
    )
    assert deciding(split)["name"] == "z"  # its strongest contradiction
