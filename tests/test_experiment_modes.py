"""Every experiment asked for its numbers without figures gives the same numbers, draws
nothing and writes nothing."""

from __future__ import annotations

import pytest

from conftest import tiny_models, tiny_study
from vaelab.core.config import ExperimentConfig
from vaelab.models.classifier import DigitClassifier
from vaelab.study.per_seed import STEPS


@pytest.mark.parametrize("name", sorted(STEPS))
def test_without_figures_the_numbers_are_the_same_and_nothing_is_drawn(name, tmp_path):
    data = tiny_study()
    judge = DigitClassifier(hidden=8, epochs=1).fit(data.x_train, data.y_train)
    cfg = ExperimentConfig(
        recon_latents=(4,), plot_latent=2, kmeans_runs=2, iwae_samples=0, elbo_samples=2,
        walk_steps=4, walk_pairs=3,
    )  # fmt: skip
    full = STEPS[name](tiny_models((2, 4)), data, cfg, tmp_path / "full", judge)
    bare = STEPS[name](tiny_models((2, 4)), data, cfg, tmp_path / "bare", judge, figures=False)
    assert full.figures and bare.figures == []
    assert bare.numbers == full.numbers
    assert not (tmp_path / "bare").exists()
