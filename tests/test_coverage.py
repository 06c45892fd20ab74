"""The claims' intervals hold their level: by simulation of the study's design, and in theory."""

import numpy as np
import pytest
from scipy import integrate, stats

from vaelab.evaluation.coverage import Design, covered, monte_carlo_floor, simulate
from vaelab.evaluation.inference import (
    ALPHA,
    half_width,
    image_df,
    t_quantile,
    variance_parts,
)

# 95%, and the Bonferroni levels of a claim of 6 comparisons and of the largest claim (18)
LEVELS = (0.95, 1 - ALPHA / 6, 1 - ALPHA / 18)
REPS = 1500
IMAGES = 100  # fewer than the study's 2,000: the coverage depends on the ratio, not on n


@pytest.mark.parametrize("seeds", [2, 3, 5, 10])
def test_the_random_effects_interval_covers_at_every_seed_spread(seeds):
    """From no seed spread to 100 times the image standard error; the image noise wholly
    shared by the seeds, or wholly their own."""
    rng = np.random.default_rng([24, seeds])
    for ratio in (0.0, 1.0, 3.0, 10.0, 100.0):
        for shared in (0.0, 1.0):
            values, boots = simulate(Design(seeds, ratio, shared, IMAGES), REPS, rng)
            for level in LEVELS:
                found = covered(values, boots, level, IMAGES).mean()
                floor = monte_carlo_floor(level, REPS)
                assert found >= floor, (seeds, ratio, shared, level, found)


def test_the_simulation_catches_an_interval_that_ignores_the_seeds():
    """The image noise alone (what one seed can show) covers far too rarely once the seeds
    spread: the simulation can fail a method."""
    values, boots = simulate(Design(3, 10.0, 0.5, IMAGES), REPS, np.random.default_rng(7))
    _, image_var = variance_parts(values, boots)
    half = half_width(np.zeros_like(image_var), image_var, 1, image_df(200, IMAGES), 0.95)
    assert np.mean(np.abs(values.mean(axis=1)) <= half) < 0.4
    assert covered(values, boots, 0.95, IMAGES).mean() >= monte_carlo_floor(0.95, REPS)


def exact_coverage(seeds: int, level: float, seed_share: float) -> float:
    """P(Z^2 <= a W + b), a = t^2 * share, b = z^2 * (1 - share), W ~ chi2(S-1) / (S-1): the
    interval's coverage when the seed part is `seed_share` of the true variance and the image
    part is known (image resamples without end). Over Z: inside sqrt(b) always covered,
    beyond it covered while W >= (Z^2 - b) / a."""
    t, z = t_quantile(level, seeds - 1), float(stats.norm.ppf(1 - (1 - level) / 2))
    a, b, df = t * t * seed_share, z * z * (1 - seed_share), seeds - 1
    inside = stats.norm.cdf(np.sqrt(b)) - 0.5
    if a == 0:
        return 2 * inside

    def beyond(x: float) -> float:
        return stats.norm.pdf(x) * stats.chi2.sf(df * (x * x - b) / a, df)

    return 2 * (inside + integrate.quad(beyond, np.sqrt(b), np.inf, epsabs=1e-12)[0])


@pytest.mark.parametrize("seeds", [2, 3, 10])
@pytest.mark.parametrize("level", [0.95, 1 - ALPHA / 18])
def test_coverage_is_at_least_the_level_whatever_the_seed_share_of_the_variance(seeds, level):
    """The coverage is concave in the seed part's share of the variance and equals the level
    at both ends (all image noise: a z-interval; all seed spread: Student's t), so it is at
    least the level in between."""
    shares = np.linspace(0, 1, 11)
    found = [exact_coverage(seeds, level, share) for share in shares]
    assert found[0] == pytest.approx(level, abs=1e-9)  # the normal interval
    assert found[-1] == pytest.approx(level, abs=1e-8)  # Student's t
    assert min(found) >= level - 1e-8
    assert all(np.diff(found, 2) <= 1e-8)  # concave
