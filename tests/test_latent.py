"""Experiment 3 (latent plot): the statistics on constructed points, then run() end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_models, tiny_study
from vaelab.core.config import ExperimentConfig
from vaelab.core.errors import VaelabError
from vaelab.experiments import latent
from vaelab.experiments.common import display_name, encode_entries, encode_means
from vaelab.experiments.latent import latent_stats


def separated_blobs(n_per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten tight 2-D blobs on a circle of radius 10, one per digit."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per)
    angles = 2 * np.pi * labels / 10
    centres = 10 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres + rng.normal(0, 0.1, centres.shape), labels


# --- latent_stats ---------------------------------------------------------------------------


def test_latent_stats_centre_spread_and_radius_of_known_points() -> None:
    square = np.array([[1.0, 1.0], [3.0, 1.0], [1.0, 3.0], [3.0, 3.0]])
    points, labels = np.tile(square, (10, 1)), np.tile([0, 0, 1, 1], 10)
    stats = latent_stats(points, labels)
    assert stats["centre"] == pytest.approx([2.0, 2.0])
    assert stats["spread"] == pytest.approx([1.0, 1.0])  # population sd
    assert stats["centre_norm"] == pytest.approx(np.sqrt(8))
    assert stats["mean_radius"] == pytest.approx((np.sqrt(2) + 2 * np.sqrt(10) + np.sqrt(18)) / 4)
    assert stats["digit_centres"] == {"0": [2.0, 1.0], "1": [2.0, 3.0]}
    assert stats["knn_accuracy"] == 1.0


def test_latent_stats_separation_is_high_on_blobs_and_chance_on_noise() -> None:
    blobs = latent_stats(*separated_blobs())
    assert blobs["knn_accuracy"] == pytest.approx(1.0)
    assert blobs["silhouette"] > 0.9
    rng = np.random.default_rng(1)
    noise = latent_stats(rng.normal(size=(1000, 2)), rng.integers(0, 10, 1000))
    assert noise["knn_accuracy"] < 0.2  # chance is 0.1
    assert noise["silhouette"] < 0.05


def test_whitened_separation_ignores_any_linear_map_of_the_latents() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 500)
    points = rng.normal(size=(500, 2)) + 2.5 * np.stack([labels % 5, labels // 5], axis=1)
    stretched = points @ np.array([[50.0, 0.0], [5.0, 0.1]]) + 7.0  # per-axis scale + shear
    plain, mapped = latent_stats(points, labels), latent_stats(stretched, labels)
    assert mapped["knn_accuracy"] < plain["knn_accuracy"] - 0.2  # the raw measure is fooled
    assert mapped["knn_accuracy_whitened"] == pytest.approx(
        plain["knn_accuracy_whitened"], abs=0.01
    )
    assert mapped["silhouette_whitened"] == pytest.approx(plain["silhouette_whitened"], abs=1e-6)
    white = latent.whiten(stretched)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(2), atol=1e-9)
    flat = latent.whiten(np.stack([points[:, 0], np.full(500, 3.0)], axis=1))
    assert flat.shape == (500, 1)  # a dimension without variance is dropped, not blown up


def test_latent_stats_separation_ignores_the_scale_of_the_latents() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 500)
    points = rng.normal(size=(500, 2)) + 0.8 * np.stack([labels % 5, labels // 5], axis=1)
    small, large = latent_stats(points, labels), latent_stats(100 * points, labels)
    assert 0.2 < small["knn_accuracy"] < 0.95  # partly separated, so the test can fail
    assert large["knn_accuracy"] == small["knn_accuracy"]
    assert large["silhouette"] == pytest.approx(small["silhouette"], rel=1e-9)
    assert large["centre"] == pytest.approx(100 * np.array(small["centre"]))


def test_latent_stats_is_repeatable_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    points, labels = rng.normal(size=(300, 2)), rng.integers(0, 10, 300)
    assert latent_stats(points, labels, seed=5) == latent_stats(points, labels, seed=5)


def test_latent_stats_needs_two_digits() -> None:
    with pytest.raises(VaelabError):
        latent_stats(np.zeros((20, 2)), np.zeros(20, dtype=int))


# --- encode_entries and names ---------------------------------------------------------------


def test_encode_entries_gives_the_cvae_with_and_without_label() -> None:
    data, models = tiny_study(50), tiny_models((2,))
    entries = encode_entries(models, data.x_test, data.y_test, 2)
    assert list(entries) == ["ae", "vae", "cvae (no label)", "cvae (true label)"]
    cvae = models[("cvae", 2)]
    np.testing.assert_array_equal(entries["cvae (no label)"], encode_means(cvae, data.x_test))
    assert not np.allclose(entries["cvae (no label)"], entries["cvae (true label)"])
    assert encode_entries(models, data.x_test, data.y_test, 3) == {}


def test_display_name() -> None:
    assert display_name("ae") == "AE"
    assert display_name("cvae (true label)") == "CVAE (true label)"
    assert display_name("conv-ae") == "conv AE"


# --- run ------------------------------------------------------------------------------------


def test_run_end_to_end(tmp_path: Path) -> None:
    cfg = ExperimentConfig(recon_latents=(4,), plot_latent=2, kmeans_runs=3)
    result = latent.run(tiny_models((2,)), tiny_study(), cfg, tmp_path)
    assert result.name == "latent"
    assert result.numbers["latent"] == 2
    models = result.numbers["models"]
    assert list(models) == ["ae", "vae", "cvae (no label)", "cvae (true label)"]
    for stats in models.values():
        assert len(stats["centre"]) == 2 and len(stats["spread"]) == 2
        assert sorted(stats["digit_centres"]) == [str(d) for d in range(10)]
        assert 0.0 <= stats["knn_accuracy"] <= 1.0 and -1.0 <= stats["silhouette"] <= 1.0
    [figure] = result.figures
    assert figure.path == "figures/latent_z2.png"
    assert not Path(figure.path).is_absolute()
    assert (tmp_path / figure.path).read_bytes().startswith(b"\x89PNG")
    assert figure.title and figure.caption


def test_run_above_two_dimensions_plots_the_first_two_and_says_so(tmp_path: Path) -> None:
    cfg = ExperimentConfig(plot_latent=4)
    result = latent.run(tiny_models((4,)), tiny_study(), cfg, tmp_path)
    assert len(result.numbers["models"]["ae"]["centre"]) == 4
    assert "first 2 of 4" in result.figures[0].title
    assert (tmp_path / "figures" / "latent_z4.png").is_file()


def test_run_without_a_model_of_that_latent_is_empty(tmp_path: Path) -> None:
    result = latent.run(tiny_models((4,)), tiny_study(), ExperimentConfig(), tmp_path)
    assert result.numbers == {} and result.figures == []
    assert not (tmp_path / "figures").exists()
