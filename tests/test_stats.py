"""Seed summaries and the one-sided tests the claims use, on numbers with known answers."""

import numpy as np
import pytest

from vaelab.stats import across_seeds, greater, paired_greater, summarize_seeds


def test_summarize_seeds_skips_unmeasured_seeds():
    s = summarize_seeds([1.0, None, 3.0, float("nan")])
    assert s == {"mean": 2.0, "sd": pytest.approx(np.sqrt(2)), "n": 2, "min": 1.0, "max": 3.0}
    assert summarize_seeds([5.0])["sd"] is None
    assert summarize_seeds([None]) == {"mean": None, "sd": None, "n": 0, "min": None, "max": None}


def test_across_seeds_summarises_what_differs_and_keeps_the_rest():
    seeds = [
        {"nll": {"4": 100.0, "16": 90.0}, "modes": ["ae"], "values": [1, 2], "runs": 50},
        {"nll": {"4": 110.0}, "modes": ["ae"], "values": [3, 4], "runs": 50},
    ]
    tree = across_seeds(seeds)
    assert tree["nll"]["4"]["mean"] == 105.0 and tree["nll"]["4"]["n"] == 2
    assert tree["nll"]["16"]["n"] == 1  # the second seed did not measure it
    assert tree["modes"] == ["ae"] and tree["values"] == [1, 2] and tree["runs"] == 50


def test_greater_tells_a_real_difference_from_noise():
    rng = np.random.default_rng(0)
    low = rng.normal(0.50, 0.01, 50)
    assert greater(low + 0.02, low[::-1])["shown"]
    noise = greater(rng.normal(0.501, 0.05, 50), rng.normal(0.5, 0.05, 50))
    assert not noise["shown"] and noise["p"] > 0.05
    assert greater([0.5] * 50, [0.5] * 50) == {
        "mean_a": 0.5,
        "mean_b": 0.5,
        "n_a": 50,
        "n_b": 50,
        "p": 1.0,
        "shown": False,
    }
    assert greater([], [0.5])["p"] is None


def test_paired_greater_sees_a_small_consistent_shift():
    base = np.linspace(0.0, 0.5, 30)
    shifted = paired_greater(base + 0.001, base)
    assert shifted["shown"] and shifted["p"] < 1e-5
    assert not paired_greater(base, base + 0.001)["shown"]  # one-sided: the other way is no
    assert paired_greater(base, base)["p"] == 1.0
    with pytest.raises(ValueError):
        paired_greater([1.0, 2.0], [1.0])
