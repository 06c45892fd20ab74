"""The semi-supervised study end to end on learnable prototype digits: M2 and its baselines at
two label counts and two seeds, results.json, the error-by-epoch log and the report page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import make_prototype_mnist
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.splits import to_float
from vaelab.data.tensors import training_split
from vaelab.study.pipeline import run_study
from vaelab.study.ssl import PAPER_M2, chosen_epoch, unlabelled_bought
from vaelab.training.labelled_only import labelled_only_error

PRESET = """
name = "ssl-test"
models = ["m2", "cvae"]
latents = [4]
seeds = [0, 1]
label_counts = [20, 50]
article_m2 = true

[model]
hidden = 32
activation = "softplus"
label_at = "input"

[train]
epochs = 2
batch_size = 50
kl_weight = 1.0
n_samples = 1
classification_weight = 1.0
labelled_batch = 20
checkpoint_every = 1
eval_every = 1

[data]
test_size = 100
validation = 100
"""


@pytest.fixture(scope="module")
def ssl_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ssl")
    mnist = make_prototype_mnist(n_train=400, n_test=100)
    data = folder / "mnist.npz"
    np.savez(data, x_train=mnist.x_train, y_train=mnist.y_train,
             x_test=mnist.x_test, y_test=mnist.y_test)  # fmt: skip
    preset = folder / "ssl.toml"
    preset.write_text(PRESET)
    out = folder / "study"
    run_study(str(preset), out, data_path=data, device="cpu")
    return out, json.loads((out / "results.json").read_text()), mnist


def test_every_method_has_an_error_per_label_count_and_seed(ssl_study):
    _, results, _ = ssl_study
    assert set(results["errors"]) == {
        "M2",
        "M2 (last epoch)",
        "M2, article's architecture",
        "labelled only",
        "CVAE + kNN",
        "CVAE + k-means",
    }
    for by_n in results["errors"].values():
        assert set(by_n) == {"20", "50"}
        for s in by_n.values():
            values = list(s["per_seed"].values())
            assert len(values) == 2 and all(0 <= v <= 1 for v in values)
            assert s["mean"] == pytest.approx(np.mean(values))
            assert s["sd"] == pytest.approx(np.std(values, ddof=1))
    assert results["paper_m2_percent"] == {str(n): e for n, e in PAPER_M2.items()}
    assert results["test_images"] == 100


def test_m2_learns_the_prototypes_from_a_few_labels(ssl_study):
    """Ten prototypes with 5% flipped pixels: a classifier that learns anything reads almost
    every test image right, a broken one about 90% wrong."""
    _, results, _ = ssl_study
    for n in ("20", "50"):
        assert results["errors"]["M2"][n]["mean"] < 0.2
        assert results["errors"]["labelled only"][n]["mean"] < 0.2


def test_the_logged_test_error_is_the_study_error_at_the_last_epoch(ssl_study):
    """The trainer's per-epoch log and the study's own reading of the saved model agree."""
    _, results, _ = ssl_study
    for n in (20, 50):
        for seed in (0, 1):
            curve = results["m2_test_error_by_epoch"][f"n{n}-seed{seed}"]
            assert [r["epoch"] for r in curve] == [1, 2]
            got = results["errors"]["M2 (last epoch)"][str(n)]["per_seed"][str(seed)]
            assert curve[-1]["test_error"] == pytest.approx(got, abs=1e-9)


def test_m2s_error_is_the_one_at_its_best_validation_epoch(ssl_study):
    out, results, _ = ssl_study
    assert results["selection"] == "best validation epoch"
    assert results["validation_images"] == 100
    for n in (20, 50):
        for seed in (0, 1):
            rows = [json.loads(line) for line in
                    next((out / "models").glob(f"m2-z4-s{seed}-*/config.json")).parent.joinpath(
                        "metrics.jsonl").read_text().splitlines()]  # fmt: skip
            curve = results["m2_test_error_by_epoch"][f"n{n}-seed{seed}"]
            best = min(curve, key=lambda r: r["validation_error"])
            assert results["m2_best_epoch"][str(n)][str(seed)] == best["epoch"]
            got = results["errors"]["M2"][str(n)]["per_seed"][str(seed)]
            assert got == pytest.approx(best["test_error"], abs=1e-9)
            assert rows and all("validation_error" in r for r in rows)
    assert "lowest error on 100 validation images" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "rows, epoch",
    [
        ([{"epoch": 1, "test_error": 0.5, "validation_error": 0.4},
          {"epoch": 2, "test_error": 0.3, "validation_error": 0.2},
          {"epoch": 3, "test_error": 0.1, "validation_error": 0.2}], 2),  # first of ties
        ([{"epoch": 1, "test_error": 0.5}, {"epoch": 2, "test_error": 0.6}], 2),  # none: last
    ],
)  # fmt: skip
def test_the_chosen_epoch_is_the_lowest_validation_error(rows, epoch):
    chosen = chosen_epoch(rows)
    assert chosen["epoch"] == epoch
    assert chosen["test_error"] == next(r["test_error"] for r in rows if r["epoch"] == epoch)


def test_what_the_unlabelled_images_bought_is_a_paired_difference_with_a_t_interval(ssl_study):
    _, results, _ = ssl_study
    for n in ("20", "50"):
        m2 = results["errors"]["M2"][n]["per_seed"]
        alone = results["errors"]["labelled only"][n]["per_seed"]
        diffs = np.array([alone[s] - m2[s] for s in ("0", "1")])
        bought = results["unlabelled_bought"][n]
        assert bought["mean"] == pytest.approx(diffs.mean())
        assert bought["every_seed"] == bool((diffs > 0).all())
        half = stats.t.ppf(0.975, 1) * diffs.std(ddof=1) / math.sqrt(2)  # 0 where they agree
        assert bought["interval"] == pytest.approx([diffs.mean() - half, diffs.mean() + half])


# hand-made test errors {method: {label count: {seed: error}}}: the labelled-only net is worse
# than M2 in every seed at 20 labels, better in one seed at 50, one seed only at 100
HAND_MADE = {
    "M2": {20: {0: 0.10, 1: 0.12, 2: 0.15}, 50: {0: 0.05, 1: 0.09, 2: 0.04}, 100: {0: 0.03}},
    "labelled only": {20: {0: 0.30, 1: 0.30, 2: 0.33}, 50: {0: 0.08, 1: 0.07, 2: 0.10},
                      100: {0: 0.06}},
}  # fmt: skip


def test_what_the_unlabelled_images_bought_on_hand_made_errors_against_scipy():
    bought = unlabelled_bought(HAND_MADE)
    assert set(bought) == {"20", "50", "100"}
    for n, diffs in (("20", [0.20, 0.18, 0.18]), ("50", [0.03, -0.02, 0.06])):
        mine = bought[n]
        assert mine["per_seed"] == pytest.approx(dict(zip(("0", "1", "2"), diffs, strict=True)))
        assert mine["mean"] == pytest.approx(np.mean(diffs))
        # scipy's one-sample t-test of the paired differences: its 95% confidence interval
        test = stats.ttest_1samp(diffs, 0.0)
        low, high = test.confidence_interval(0.95)
        assert mine["interval"] == pytest.approx([low, high], rel=1e-9)
    assert bought["20"]["every_seed"] and not bought["50"]["every_seed"]
    assert bought["20"]["interval"][0] > 0 > bought["50"]["interval"][0]
    one_seed = bought["100"]  # no interval from one seed
    assert one_seed["interval"] is None and one_seed["every_seed"]
    assert one_seed["mean"] == one_seed["per_seed"]["0"] == pytest.approx(0.03)


def test_seeds_that_agree_exactly_give_an_interval_of_no_width():
    same = {"M2": {20: {0: 0.1, 1: 0.1}}, "labelled only": {20: {0: 0.3, 1: 0.3}}}
    assert unlabelled_bought(same)["20"]["interval"] == pytest.approx([0.2, 0.2])


def test_the_labelled_only_baseline_uses_exactly_the_labelled_images(ssl_study):
    _, results, mnist = ssl_study
    cfg = RunConfig(ModelConfig(kind="m2"), TrainConfig(seed=1),
                    DataConfig(n_labelled=20, validation=100))  # fmt: skip
    split = training_split(mnist.y_train, cfg)
    chosen = split.train[split.y_train >= 0]
    assert (
        len(chosen) == 20 and np.bincount(mnist.y_train[chosen], minlength=10).tolist() == [2] * 10
    )
    assert not set(chosen) & set(split.validation)  # never a validation image
    x, y = torch.from_numpy(to_float(mnist.x_train)), mnist.y_train
    x_test, y_test = torch.from_numpy(to_float(mnist.x_test)), mnist.y_test
    held = (x[split.validation], y[split.validation])
    net = ModelConfig(hidden=32, activation="softplus")  # the study's q(y|x)
    again = labelled_only_error(x[chosen], y[chosen], x_test, y_test, net, 1e-3, 1, held)
    assert again == results["errors"]["labelled only"]["20"]["per_seed"]["1"]


def test_the_report_shows_the_table_the_gain_and_the_figure(ssl_study):
    out, results, _ = ssl_study
    html = (out / "report.html").read_text()
    assert "What the unlabelled images bought" in html
    assert "Was M2 still improving?" in html
    m2 = results["errors"]["M2"]["50"]
    assert f"{100 * m2['mean']:.2f}" in html
    assert html.count("data:image/png;base64,") == 1
    assert "http://" not in html and "https://" not in html  # offline
    assert Path(out / results["figures"]["ssl"][0]["path"]).is_file()
    assert "joins the input of q(z|x,y) and p(x|y,z)" in html
    article = results["errors"]["M2, article's architecture"]["50"]
    assert f"{100 * article['mean']:.2f}" in html


def test_m2_with_the_articles_architecture_trains_beside_it(ssl_study):
    out, results, _ = ssl_study
    found = {}
    for folder in (out / "models").iterdir():
        cfg = json.loads((folder / "config.json").read_text())
        if cfg["model"]["kind"] == "m2":
            m = cfg["model"]
            found[(m["hidden"][0], m["activation"], m["label_at"], cfg["train"]["seed"],
                   cfg["data"]["n_labelled"])] = folder  # fmt: skip
    for seed in (0, 1):
        for n in (20, 50):
            assert (32, "softplus", "input", seed, n) in found
            folder = found[(128, "tanh", "hidden", seed, n)]  # the article's, trained alike
            rows = [json.loads(r) for r in (folder / "metrics.jsonl").read_text().splitlines()]
            best = min(rows, key=lambda r: r["validation_error"])
            got = results["errors"]["M2, article's architecture"][str(n)]["per_seed"][str(seed)]
            assert got == pytest.approx(best["test_error"], abs=1e-12)
