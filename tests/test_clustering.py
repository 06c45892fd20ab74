"""Experiment 4 (clustering): the scores on inputs whose answer is known, then run() end to end."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, v_measure_score

from conftest import tiny_models, tiny_study
from vaelab.core.config import ExperimentConfig
from vaelab.evaluation.evidence import resamples
from vaelab.experiments import clustering
from vaelab.experiments.clustering import cluster_scores, hungarian_accuracy, summarize


def blobs(n_per: int = 50, sd: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten tight Gaussian blobs, one per digit, at 10 * the unit vectors of R^10."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per)
    return 10.0 * np.eye(10)[labels] + rng.normal(0, sd, (len(labels), 10)), labels


# --- the scores of every run, against scikit-learn's own -------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda runs: st.integers(1, 60).flatmap(
            lambda n: st.tuples(
                st.lists(st.integers(0, 9), min_size=n, max_size=n),
                st.lists(
                    st.lists(st.integers(0, 11), min_size=n, max_size=n),
                    min_size=runs,
                    max_size=runs,
                ),
            )
        )
    )
)
def test_every_runs_scores_are_scikit_learns_to_the_last_bit(case):
    """One table per run instead of scikit-learn's passes: the very same floats, with empty
    cluster ids, a single cluster or digit, and more clusters than digits among the cases."""
    labels, clusterings = np.array(case[0]), np.array(case[1])
    found = clustering.scores_of(clusterings, labels)
    for i, clusters in enumerate(clusterings):
        assert found["v_measure"][i] == v_measure_score(labels, clusters), i
        assert found["ari"][i] == adjusted_rand_score(labels, clusters), i
        assert found["accuracy"][i] == hungarian_accuracy(labels, clusters), i


def test_no_runs_have_no_scores():
    assert clustering.scores_of(np.zeros((0, 5), dtype=int), np.arange(5)) == {
        "v_measure": [],
        "ari": [],
        "accuracy": [],
    }


def test_the_scores_of_k_means_runs_at_the_articles_size_are_scikit_learns():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    features = rng.normal(size=(2000, 4)) + labels[:, None] * 0.3
    runs = clustering.kmeans_labels(features, runs=20, seed=1)
    found = clustering.scores_of(runs, labels)
    assert found["v_measure"] == [v_measure_score(labels, r) for r in runs]
    assert found["ari"] == [adjusted_rand_score(labels, r) for r in runs]


# --- hungarian_accuracy --------------------------------------------------------------------


def test_hungarian_accuracy_of_a_relabelled_perfect_clustering_is_one() -> None:
    labels = np.repeat(np.arange(10), 7)
    permutation = np.random.default_rng(0).permutation(10) + 100  # ids need not be 0..9
    assert hungarian_accuracy(labels, permutation[labels]) == 1.0


def test_hungarian_accuracy_of_a_known_confusion() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    clusters = np.array([1, 1, 0, 0, 0, 0, 2, 2, 2, 1])
    # Contingency (cluster x digit): c0 = (1, 3, 0), c1 = (2, 0, 1), c2 = (0, 0, 3).
    # Best matching c0->1, c1->0, c2->2 gets 3 + 2 + 3 = 8 of 10 right.
    assert hungarian_accuracy(labels, clusters) == pytest.approx(0.8)


def test_hungarian_accuracy_with_more_or_fewer_clusters_than_digits() -> None:
    assert hungarian_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5  # two clusters stay unmatched
    assert hungarian_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == 0.75  # one digit stays unmatched


def test_hungarian_accuracy_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        hungarian_accuracy([0, 1, 2], [0, 1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30))
def test_hungarian_accuracy_equals_brute_force_over_all_matchings(pairs) -> None:
    labels, clusters = (np.array(side) for side in zip(*pairs, strict=True))
    best = max(
        sum(int(np.sum((clusters == c) & (labels == perm[c]))) for c in range(4))
        for perm in itertools.permutations(range(4))
    )
    assert hungarian_accuracy(labels, clusters) == pytest.approx(best / len(labels))


# --- cluster_scores and summarize ----------------------------------------------------------


def test_cluster_scores_are_perfect_on_well_separated_blobs() -> None:
    features, labels = blobs()
    scores = cluster_scores(features, labels, runs=5, seed=3)
    assert set(scores) == {"v_measure", "ari", "accuracy"}
    for values in scores.values():
        assert len(values) == 5
        assert values == pytest.approx([1.0] * 5)


def test_cluster_scores_are_near_zero_on_noise() -> None:
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(1000, 5)), rng.integers(0, 10, 1000)
    scores = cluster_scores(features, labels, runs=3)
    assert max(scores["v_measure"]) < 0.1
    assert max(abs(a) for a in scores["ari"]) < 0.05
    assert max(scores["accuracy"]) < 0.2  # chance is 0.1


def test_cluster_scores_run_i_uses_seed_plus_i() -> None:
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(300, 3)), rng.integers(0, 10, 300)
    first = cluster_scores(features, labels, runs=4, seed=0)
    assert first == cluster_scores(features, labels, runs=4, seed=0)  # same seed, same numbers
    shifted = cluster_scores(features, labels, runs=3, seed=1)
    assert first["v_measure"][1:] == shifted["v_measure"]
    assert len(set(first["v_measure"])) > 1  # the runs really differ


def test_summarize_known_values() -> None:
    summary = summarize([4.0, 1.0, 3.0, 2.0])
    assert summary == pytest.approx(
        {"mean": 2.5, "sd": np.sqrt(5 / 3), "min": 1.0, "median": 2.5, "max": 4.0}
    )
    assert summarize([0.7]) == pytest.approx(
        {"mean": 0.7, "sd": 0.0, "min": 0.7, "median": 0.7, "max": 0.7}
    )


# --- run ------------------------------------------------------------------------------------

ROWS = ["ae", "vae", "cvae (no label)", "cvae (true label)", "pixels"]


def test_run_end_to_end(tmp_path: Path) -> None:
    cfg = ExperimentConfig(recon_latents=(4,), plot_latent=2, kmeans_runs=3)
    result = clustering.run(tiny_models((4,)), tiny_study(), cfg, tmp_path)
    assert result.name == "clustering"
    assert result.numbers["runs"] == 3 and result.numbers["clusters"] == 10
    rows = result.numbers["by_latent"]["4"]
    assert list(rows) == ROWS
    for row in rows.values():
        assert set(row) == {"v_measure", "ari", "accuracy"}
        for metric in row.values():
            assert set(metric) == {"mean", "sd", "min", "median", "max", "values"}
            assert len(metric["values"]) == 3
            assert metric["min"] <= metric["median"] <= metric["max"]
        assert all(0.0 <= v <= 1.0 for v in row["v_measure"]["values"])
    [figure] = result.figures
    assert figure.path == "figures/clustering_z4.png"
    assert not Path(figure.path).is_absolute()
    assert (tmp_path / figure.path).read_bytes().startswith(b"\x89PNG")
    assert "z=4" in figure.title and "3 runs" in figure.title and figure.caption


def test_run_skips_latents_without_models_and_reuses_the_pixel_baseline(tmp_path: Path) -> None:
    models = tiny_models((4, 8))
    del models[("cvae", 8)]
    cfg = ExperimentConfig(recon_latents=(4, 8, 32), kmeans_runs=2)
    by_latent = clustering.run(models, tiny_study(), cfg, tmp_path).numbers["by_latent"]
    assert list(by_latent) == ["4", "8"]  # no model has z=32
    assert list(by_latent["8"]) == ["ae", "vae", "pixels"]
    assert by_latent["4"]["pixels"] == by_latent["8"]["pixels"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "clustering_z4.png",
        "clustering_z8.png",
    ]


def test_run_without_any_model_returns_no_rows(tmp_path: Path) -> None:
    result = clustering.run({}, tiny_study(), ExperimentConfig(kmeans_runs=2), tmp_path)
    assert result.numbers["by_latent"] == {} and result.figures == []


# --- the V-measure the claims weigh --------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(1, 60))
def test_v_measure_of_counts_equals_sklearns(seed: int, clusters: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    labels, assigned = rng.integers(0, 10, n), rng.integers(0, clusters, n)
    table = np.zeros((clusters, 10))
    np.add.at(table, (assigned, labels), 1)
    expected = v_measure_score(labels, assigned)
    assert clustering.v_measure_of_counts(table) == pytest.approx(expected, abs=1e-12)


def test_v_measure_estimate_averages_the_restarts_and_rescores_resampled_pairs() -> None:
    features, labels = blobs(n_per=8, sd=3.0)
    runs = clustering.kmeans_labels(features, runs=4, seed=0)
    e = clustering.v_measure_estimate(runs, labels)
    scores = [v_measure_score(labels, r) for r in runs]
    assert e["value"] == pytest.approx(np.mean(scores), abs=1e-12)
    index = resamples(len(labels))[7]  # replicate 7: the same pairs resampled in every run
    again = np.mean([v_measure_score(labels[index], r[index]) for r in runs])
    assert e["boot"][7] == pytest.approx(again, rel=1e-5)
    assert np.std(e["boot"]) > 0


def test_numbers_for_the_claims_alone_keep_the_rows_they_read(tmp_path: Path) -> None:
    cfg = ExperimentConfig(recon_latents=(4,), kmeans_runs=2, kmeans_n_init=2)
    full = clustering.run(tiny_models((4,)), tiny_study(), cfg, tmp_path).numbers
    bare = clustering.run(tiny_models((4,)), tiny_study(), cfg, None)
    assert bare.figures == [] and bare.numbers["n_init"] == 2
    read = ["ae", "vae", "cvae (no label)"]  # claims 7 and 8: no true label, no pixels
    assert list(bare.numbers["by_latent"]["4"]) == read
    assert bare.numbers["by_latent"]["4"] == {k: full["by_latent"]["4"][k] for k in read}
    evidence = bare.numbers["evidence"]["v_measure"]["4"]
    assert evidence == {k: full["evidence"]["v_measure"]["4"][k] for k in read}
