"""Seed summaries and the one-sided tests the claims use, on numbers with known answers."""

import numpy as np
import pytest

from vaelab.evaluation.evidence import (
    CONTRADICTS,
    DRAWS,
    INCONCLUSIVE,
    SUPPORTS,
    across_seeds,
    difference,
    mean_estimate,
    outcome,
    pool,
    resample_counts,
    resamples,
    seed_interval,
    statistic_estimate,
    summarize_seeds,
)


def test_summarize_seeds_skips_unmeasured_seeds():
    s = summarize_seeds([1.0, None, 3.0, float("nan")])
    assert s == {"mean": 2.0, "sd": pytest.approx(np.sqrt(2)), "n": 2, "min": 1.0, "max": 3.0}
    assert summarize_seeds([5.0])["sd"] is None
    assert summarize_seeds([None]) == {"mean": None, "sd": None, "n": 0, "min": None, "max": None}


def test_across_seeds_summarises_what_differs_and_keeps_the_rest():
    seeds = [
        {"nll": {"4": 100.0, "16": 90.0}, "modes": ["ae"], "values": [1, 2], "runs": 50},
        {"nll": {"4": 110.0}, "modes": ["ae"], "values": [3, 4], "runs": 50, "evidence": {}},
    ]
    tree = across_seeds(seeds)
    assert tree["nll"]["4"]["mean"] == 105.0 and tree["nll"]["4"]["n"] == 2
    assert tree["nll"]["16"]["n"] == 1  # the second seed did not measure it
    assert tree["modes"] == ["ae"] and tree["values"] == [1, 2] and tree["runs"] == 50
    assert "evidence" not in tree  # estimates are for the claims, not the tables


def test_resamples_depend_only_on_the_number_of_items():
    a, b = resamples(50), resamples(50)
    assert a is b and a.shape == (DRAWS, 50) and a.min() >= 0 and a.max() < 50
    assert not np.array_equal(resamples(51)[:, :50], a)
    counts = resample_counts(50)
    assert counts.sum(axis=1).tolist() == [50.0] * DRAWS
    np.testing.assert_array_equal(counts[3], np.bincount(a[3], minlength=50))
    with pytest.raises(ValueError):
        a[0, 0] = 1  # read-only: shared by every caller


def test_mean_estimate_is_the_mean_of_each_resample():
    values = np.random.default_rng(1).normal(size=80)
    e = mean_estimate(values)
    assert e["value"] == pytest.approx(values.mean())
    np.testing.assert_allclose(e["boot"], values[resamples(80)].mean(axis=1), rtol=1e-5)
    assert np.std(e["boot"]) == pytest.approx(values.std() / np.sqrt(80), rel=0.2)


def test_statistic_estimate_sees_the_full_sample_then_each_resample():
    values = np.arange(10.0)
    e = statistic_estimate(lambda index: values[index].max(axis=1), 10)
    assert e["value"] == 9.0
    np.testing.assert_array_equal(e["boot"], values[resamples(10)].max(axis=1))


def test_differences_are_paired_replicate_by_replicate():
    values = np.random.default_rng(2).normal(size=100)
    a, b = mean_estimate(values + 0.01), mean_estimate(values)
    d = difference(a, b)
    assert d["value"] == pytest.approx(0.01)
    np.testing.assert_allclose(d["boot"], 0.01, atol=1e-5)  # the shared noise cancels


def test_pool_resamples_seeds_and_one_shared_test_resample():
    seeds = [{"value": v, "boot": [v] * DRAWS} for v in (1.0, 2.0, 3.0)]
    pooled = pool(seeds, 0.95, key="x")
    assert pooled.value == 2.0 and pooled.seeds == 3
    assert (pooled.low, pooled.high) == (1.0, 3.0)  # all three draws one seed: p = 1/27 each
    one = [{"value": 0.5, "boot": np.linspace(0, 1, DRAWS).tolist()}]
    low, high = pool(one, 0.9).low, pool(one, 0.9).high
    assert (low, high) == pytest.approx(seed_interval(one[0], 0.9), abs=0.02)
    assert pool(seeds, 0.95, key="x") == pooled  # reproducible


def test_a_test_set_shift_common_to_every_seed_is_not_averaged_away():
    noise = np.random.default_rng(3).normal(0, 1, DRAWS)
    shared = [{"value": 0.0, "boot": noise.tolist()} for _ in range(3)]
    independent = [
        {"value": 0.0, "boot": np.random.default_rng(s).permutation(noise).tolist()}
        for s in range(3)
    ]
    width = lambda p: p.high - p.low  # noqa: E731
    # independent noise shrinks the mean's sd to sqrt(5/9) of it (seeds drawn with repeats)
    assert width(pool(shared, 0.95)) > 1.2 * width(pool(independent, 0.95))


@pytest.mark.parametrize(
    ("low", "high", "expect", "expected"),
    [
        (0.1, 0.3, 1, SUPPORTS),
        (0.1, 0.3, -1, CONTRADICTS),
        (-0.3, -0.1, -1, SUPPORTS),
        (-0.3, -0.1, 1, CONTRADICTS),
        (-0.1, 0.3, 1, INCONCLUSIVE),
        (0.0, 0.0, 1, INCONCLUSIVE),
        (0.0, 0.2, 1, INCONCLUSIVE),
    ],
)
def test_outcome_reads_the_interval_against_the_articles_sign(low, high, expect, expected):
    assert outcome(low, high, expect) == expected
