"""Every study config either runs to its report or fails before any work, in one line."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from helpers_reliability import write_npz
from vaelab.core.errors import VaelabError
from vaelab.study.pipeline import run_study

DATA = Path(tempfile.mkdtemp(prefix="vaelab-preflight-")) / "m.npz"


def toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


@st.composite
def study_configs(draw) -> str:
    models = draw(st.lists(st.sampled_from(["ae", "vae", "cvae"]), unique=True, min_size=1))
    sizes = st.sampled_from([2, 1, 3, 4, 5, 16])
    latents = draw(st.lists(sizes, unique=True, min_size=1, max_size=2))
    if draw(st.integers(0, 15)) == 15:  # now and then an empty grid, which must fail up front
        models, latents = draw(st.sampled_from([([], latents), (models, [])]))
    recon = draw(st.lists(st.sampled_from([1, 2, 3, 4, 16]), unique=True, min_size=1, max_size=2))
    digits = draw(st.lists(st.integers(0, 9), min_size=0, max_size=2))
    walks = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=2))
    return f"""
models = {toml_list(models)}
latents = {toml_list(latents)}
[model]
hidden = 8
[train]
epochs = 1
batch_size = 50
checkpoint_every = 1
eval_every = 1
device = "cpu"
[data]
path = "{DATA}"
train_size = {draw(st.sampled_from([60, 200]))}
test_size = {draw(st.sampled_from([100, 30, 4]))}
n_labelled = {draw(st.sampled_from([0, 10, 100, 5000]))}
[experiments]
recon_latents = {toml_list(recon)}
plot_latent = {draw(st.sampled_from([2, 3, 4, 1]))}
recon_digits = {toml_list(digits)}
wrong_labels = {toml_list([(d + 1) % 10 for d in digits])}
walks = {toml_list([list(w) for w in walks])}
walk_steps = {draw(st.sampled_from([2, 3]))}
kmeans_runs = 1
kmeans_clusters = {draw(st.sampled_from([2, 10, 30]))}
iwae_samples = 2
iwae_images = {draw(st.sampled_from([5, 1000]))}
elbo_samples = 1
classifier_epochs = 1
"""


@pytest.fixture(scope="module", autouse=True)
def data_file():
    write_npz(DATA, 200, 100)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=study_configs())
def test_a_study_runs_to_its_report_or_fails_before_any_work(text):
    with tempfile.TemporaryDirectory() as tmp:
        toml, out = Path(tmp) / "s.toml", Path(tmp) / "study"
        toml.write_text(text)
        try:
            run_study(str(toml), out, console=Console(file=io.StringIO()))
        except VaelabError as err:
            assert "\n" not in str(err) and str(err)
            assert not out.exists()  # refused before anything was made: no model folder
            return
        results = json.loads((out / "results.json").read_text())
        assert (out / "report.html").stat().st_size > 0
        assert len(results["training"]) == len(results["config"]["models"]) * len(
            results["config"]["latents"]
        )
        for name, why in results["not_measured"].items():
            assert name and why


def test_one_latent_size_not_in_the_article_runs_and_says_what_was_not_measured(tmp_path):
    write_npz(DATA, 200, 100)
    toml = tmp_path / "s.toml"
    toml.write_text(
        f'models = ["vae"]\nlatents = [3]\n[model]\nhidden = 8\n[train]\nepochs = 1\n'
        f'device = "cpu"\n[data]\npath = "{DATA}"\ntest_size = 100\n'
        "[experiments]\nkmeans_runs = 1\niwae_samples = 2\nclassifier_epochs = 1\n"
    )
    run_study(str(toml), tmp_path / "out", console=Console(file=io.StringIO()))
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["not_measured"]) == {
        "reconstruction grids", "interpolation", "latent", "clustering"
    }  # fmt: skip
    assert results["experiments"]["reconstruction"]["table"]["vae"]["3"]["nll"] > 0


def test_a_test_subset_without_a_needed_digit_fails_before_training(tmp_path):
    write_npz(DATA, 200, 100)
    toml = tmp_path / "s.toml"
    toml.write_text(f'models = ["vae"]\nlatents = [2]\n[data]\npath = "{DATA}"\ntest_size = 5\n')
    with pytest.raises(VaelabError, match=r"the 5 test images \(data.test_size\) hold no "):
        run_study(str(toml), tmp_path / "out", console=Console(file=io.StringIO()))
    assert not (tmp_path / "out").exists()


def test_too_few_images_per_digit_skips_the_latent_experiment():
    from unittest.mock import ANY

    import numpy as np

    from vaelab.core.config import StudyConfig
    from vaelab.study.preflight import skipped_experiments

    cfg = StudyConfig(models=("vae",), latents=(2, 4))
    assert skipped_experiments(cfg, np.arange(10).repeat(5)) == {}
    assert "5-fold" in skipped_experiments(cfg, np.arange(10).repeat(4))["latent"]
    cfg = StudyConfig(models=("conv-ae", "conv-vae"), latents=(4,))
    assert skipped_experiments(cfg, np.arange(10).repeat(5)) == {"latent": ANY}  # plot_latent
    cfg = StudyConfig(models=("ae",), latents=(3,))
    assert set(skipped_experiments(cfg, np.arange(10).repeat(5))) == {
        "reconstruction grids", "interpolation", "latent", "clustering"
    }  # fmt: skip
