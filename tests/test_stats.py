"""Seed summaries, estimates and the intervals and outcomes the claims use, on numbers with
known answers."""

import numpy as np
import pytest
from scipy import stats

from vaelab.evaluation.evidence import (
    DRAWS,
    across_seeds,
    difference,
    mean_estimate,
    resample_counts,
    resamples,
    statistic_estimate,
    summarize_seeds,
)
from vaelab.evaluation.inference import (
    CONTRADICTS,
    EQUIVALENT,
    INCONCLUSIVE,
    SUPPORTS,
    decidable,
    image_df,
    outcome,
    pool,
    seed_interval,
    seeds_to_decide,
    sign_agreement,
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


def seeds_of(values, noise, items=None):
    """Estimates of `values` whose resamples add `noise` (one row per seed, or one row for all)."""
    noise = np.broadcast_to(np.asarray(noise, dtype=float), (len(values), DRAWS))
    found = [{"value": v, "boot": (v + n).tolist()} for v, n in zip(values, noise, strict=True)]
    return [e | {"items": items} for e in found] if items else found


def test_pool_is_the_random_effects_interval_of_seeds_and_shared_test_images():
    noise = np.random.default_rng(4).normal(0, 0.3, DRAWS)
    values = [1.0, 2.0, 4.0]
    pooled = pool(seeds_of(values, noise, items=500), 0.99)
    # by hand with scipy: t(2) on the seeds' variance / 3, t(df) on the shared image variance
    df = 1 / (1 / (DRAWS - 1) + 1 / 499)
    seed_part = stats.t.ppf(0.995, 2) ** 2 * np.var(values, ddof=1) / 3
    image_part = stats.t.ppf(0.995, df) ** 2 * np.var(noise, ddof=1)
    half = np.sqrt(seed_part + image_part)
    assert pooled.value == pytest.approx(7 / 3)
    assert (pooled.low, pooled.high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert pooled.seed_sd == pytest.approx(np.std(values, ddof=1))
    assert pooled.image_se == pytest.approx(np.std(noise, ddof=1))
    assert pooled.image_df == pytest.approx(df) and pooled.holds_level
    assert pool(seeds_of(values, noise, items=500), 0.99) == pooled  # no random draws


def test_three_seeds_no_longer_make_an_interval_of_the_lowest_and_highest_seed():
    """With no image noise, the interval is Student's t on the seeds: wider than their range."""
    pooled = pool(seeds_of([1.0, 2.0, 3.0], 0.0), 0.95)
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert (pooled.low, pooled.high) == pytest.approx((2 - half, 2 + half))
    assert pooled.low < 1.0 and pooled.high > 3.0


def test_one_seed_gives_its_test_images_noise_only_and_says_it_does_not_hold_its_level():
    one = seeds_of([0.5], np.linspace(-1, 1, DRAWS))
    pooled = pool(one, 0.9)
    assert not pooled.holds_level and pooled.seed_sd is None
    assert (pooled.low, pooled.high) == pytest.approx(seed_interval(one[0], 0.9))
    half = stats.t.ppf(0.95, DRAWS - 1) * np.std(np.linspace(-1, 1, DRAWS), ddof=1)
    assert seed_interval(one[0], 0.9) == pytest.approx((0.5 - half, 0.5 + half))


def test_a_test_set_shift_common_to_every_seed_is_not_averaged_away():
    noise = np.random.default_rng(3).normal(0, 1, DRAWS)
    shared = seeds_of([0.0] * 3, noise)
    own = seeds_of([0.0] * 3, [np.random.default_rng(s).permutation(noise) for s in range(3)])
    width = lambda p: p.high - p.low  # noqa: E731
    # independent noise averages to sqrt(1/3) of it over three seeds; shared noise does not
    assert width(pool(shared, 0.95)) / width(pool(own, 0.95)) == pytest.approx(np.sqrt(3), rel=0.2)


def test_the_image_part_counts_the_precision_of_few_items():
    assert image_df(200, None) == 199 and image_df(200, 1) == 199
    assert image_df(200, 100) == pytest.approx(1 / (1 / 199 + 1 / 99))
    assert image_df(200, 10**9) == pytest.approx(199, rel=1e-6)
    one = seeds_of([0.0], np.linspace(-1, 1, DRAWS), items=50)[0]
    half = stats.t.ppf(0.975, 1 / (1 / 199 + 1 / 49)) * np.std(one["boot"], ddof=1)
    assert seed_interval(one, 0.95) == pytest.approx((-half, half))


def test_decidable_is_t_over_root_s_and_shrinks_with_seeds():
    assert decidable(1, 0.95) is None
    assert decidable(3, 0.95) == pytest.approx(stats.t.ppf(0.975, 2) / np.sqrt(3))  # 2.48
    assert decidable(10, 1 - 0.05 / 18) == pytest.approx(stats.t.ppf(1 - 0.025 / 18, 9) / 10**0.5)
    assert decidable(10, 0.95) < decidable(5, 0.95) < decidable(3, 0.95) < decidable(2, 0.95)


def test_seeds_to_decide_is_the_first_seed_count_whose_interval_would_decide():
    seeds = seeds_of([0.9, 1.1, 1.0, 1.3, 0.7], 0.0)  # mean 1, sd about 0.22: decided
    undecided = seeds_of([-1.0, 1.0, 3.0], 0.0)  # mean 1, sd 2
    pooled = pool(undecided, 0.95)
    found = seeds_to_decide(pooled, 0.95, +1, 0.1)
    for s in (found - 1, found):
        half = stats.t.ppf(0.975, s - 1) * 2 / np.sqrt(s)
        assert (half < 1) == (s == found)
    # t(1) = 12.7 makes two seeds' half-width 2.0; t(2) = 4.3 makes three seeds' 0.55 < 1
    assert seeds_to_decide(pool(seeds, 0.95), 0.95, +1, 0.1) == 3
    assert seeds_to_decide(pool(seeds_of([1.0], 0.0), 0.95), 0.95, +1, 0.1) is None


def test_sign_agreement_is_an_exact_binomial_sign_test():
    assert sign_agreement([0.3, 0.1, 0.2], +1) == {"agree": 3, "of": 3, "p": 0.125}  # 2^-3
    assert sign_agreement([0.3, -0.1, 0.2], -1) == {"agree": 1, "of": 3, "p": 0.875}
    found = sign_agreement([1.0] * 9 + [-1.0, 0.0], +1)  # a tie is left out
    assert found["of"] == 10 and found["p"] == pytest.approx(11 / 1024)
    assert sign_agreement([0.1], 0) is None


@pytest.mark.parametrize(
    ("low", "high", "expect", "margin", "expected"),
    [
        (0.1, 0.3, 1, 0.0, SUPPORTS),
        (0.1, 0.3, -1, 0.0, CONTRADICTS),
        (-0.3, -0.1, -1, 0.0, SUPPORTS),
        (-0.3, -0.1, 1, 0.0, CONTRADICTS),
        (-0.1, 0.3, 1, 0.0, INCONCLUSIVE),
        (0.0, 0.0, 1, 0.0, INCONCLUSIVE),
        (0.0, 0.2, 1, 0.0, INCONCLUSIVE),
        # a margin: a precisely measured zero, or a tiny but consistent lean, is equivalent
        (0.0, 0.0, 1, 0.01, EQUIVALENT),
        (-0.0008, 0.0007, 1, 0.02, EQUIVALENT),
        (0.001, 0.005, 1, 0.02, EQUIVALENT),
        (-0.005, -0.001, 1, 0.02, EQUIVALENT),
        (0.001, 0.5, 1, 0.02, SUPPORTS),  # on the predicted side, not inside the margin
        (-0.01, 0.02, 1, 0.02, INCONCLUSIVE),  # touches the margin
        # a value predicted near zero
        (0.1, 0.2, 0, 0.25, SUPPORTS),
        (0.3, 0.6, 0, 0.25, CONTRADICTS),
        (-0.6, -0.3, 0, 0.25, CONTRADICTS),
        (0.1, 0.6, 0, 0.25, INCONCLUSIVE),
    ],
)
def test_outcome_reads_the_interval_against_the_articles_prediction(
    low, high, expect, margin, expected
):
    assert outcome(low, high, expect, margin) == expected
