"""k-means against scikit-learn's, started from the same centres, in C and in batched torch."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.cluster._k_means_common import _is_same_clustering

from vaelab.experiments import kmeans
from vaelab.models import kernels


@pytest.fixture(autouse=True, params=["kernels", "torch ops"])
def kmeans_path(request):
    if request.param == "kernels" and kernels._load()[0] is None:
        pytest.skip(kernels.kernels_status())
    with kernels.turned_off() if request.param == "torch ops" else contextlib.nullcontext():
        yield request.param


def codes(n: int = 600, d: int = 4, seed: int = 0) -> np.ndarray:
    """Overlapping Gaussian clouds, as a model's latent codes of ten digits look."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, (10, d))
    return means[rng.integers(0, 10, n)] + rng.normal(0, 1.0, (n, d)) + 3.0


def sklearn_from(x: np.ndarray, init: np.ndarray) -> KMeans:
    return KMeans(len(init), init=init, n_init=1, algorithm="lloyd").fit(x)


@pytest.mark.parametrize(
    ("n", "d", "k", "seed"), [(600, 4, 10, 0), (500, 16, 10, 1), (300, 2, 5, 2)]
)
def test_lloyd_from_kmeans_plus_plus_starts_is_scikit_learns(n, d, k, seed):
    x = codes(n, d, seed)
    centred = torch.from_numpy(x - x.mean(0))
    first, uniforms = kmeans.starts(n, k, runs=4, n_init=3, seed=seed)
    starts = kmeans.kmeans_plusplus(centred, k, uniforms.double(), first)  # (12, k, d)
    labels, inertia, iterations = kmeans.lloyd(centred, starts, kmeans.tolerance(centred))
    for j in range(len(starts)):
        ref = sklearn_from(x, starts[j].numpy() + x.mean(0))
        np.testing.assert_array_equal(labels[j].numpy(), ref.labels_)
        assert float(inertia[j]) == pytest.approx(ref.inertia_, rel=1e-10)
        assert int(iterations[j]) == ref.n_iter_
    assert len({tuple(row.tolist()) for row in labels}) > 1  # the starts really differ


def test_an_empty_cluster_takes_the_farthest_point_as_scikit_learn_does():
    x = codes(400, 3, 5)
    centred = torch.from_numpy(x - x.mean(0))
    start = centred[:6].clone()
    start[2] = torch.tensor([100.0, 100.0, 100.0])  # no point is nearest to it at first
    start[4] = torch.tensor([-90.0, 80.0, 70.0])  # nor to this one
    labels, inertia, iterations = kmeans.lloyd(centred, start.unsqueeze(0), 1e-12)
    ref = sklearn_from(x, start.numpy() + x.mean(0))
    np.testing.assert_array_equal(labels[0].numpy(), ref.labels_)
    assert float(inertia[0]) == pytest.approx(ref.inertia_, rel=1e-10)
    assert len(np.unique(ref.labels_)) == 6


def test_kmeans_plus_plus_spreads_its_centres_like_scikit_learns():
    """Our starts are drawn from our own generators; their quality matches scikit-learn's
    k-means++ (the potential of the starts, over many draws)."""
    x = codes(800, 4, 3)
    centred = torch.from_numpy(x - x.mean(0))
    first, uniforms = kmeans.starts(800, 10, runs=40, n_init=1, seed=0)
    ours = kmeans.kmeans_plusplus(centred, 10, uniforms.double(), first)
    potential = torch.cdist(centred.unsqueeze(0), ours).square().min(2).values.sum(1)
    from sklearn.cluster import kmeans_plusplus

    theirs = [
        np.square(x[:, None, :] - kmeans_plusplus(x, 10, random_state=s)[0][None]).sum(2)
        .min(1).sum()
        for s in range(40)
    ]  # fmt: skip
    assert float(potential.mean()) == pytest.approx(np.mean(theirs), rel=0.1)
    uniform = [np.square(x[:, None] - x[np.random.default_rng(s).choice(800, 10)][None]).sum(2)
               .min(1).sum() for s in range(40)]  # fmt: skip
    assert float(potential.mean()) < 0.8 * np.mean(uniform)  # better than random starts


def test_each_run_keeps_its_best_start_and_is_seeded_on_its_own():
    x = codes(500, 4, 7)
    labels, inertia = kmeans.kmeans_runs(x, runs=5, n_init=4, seed=11, dtype=torch.float64)
    assert labels.shape == (5, 500) and inertia.shape == (5,)
    centred = torch.from_numpy(x - x.mean(0))
    first, uniforms = kmeans.starts(500, 10, runs=5, n_init=4, seed=11)
    starts = kmeans.kmeans_plusplus(centred, 10, uniforms.double(), first)
    every = kmeans.lloyd(centred, starts, kmeans.tolerance(centred))[1].view(5, 4).numpy()
    np.testing.assert_allclose(inertia, every.min(1), rtol=1e-12)
    # run i depends only on seed + i: the last four runs are the first four seeded one later
    later, _ = kmeans.kmeans_runs(x, runs=4, n_init=4, seed=12, dtype=torch.float64)
    np.testing.assert_array_equal(later, labels[1:])
    # more starts never give a run a worse best
    one = kmeans.kmeans_runs(x, runs=5, n_init=1, seed=11, dtype=torch.float64)[1]
    assert (inertia <= one + 1e-9).all() and (inertia < one - 1e-9).any()


def test_float32_agrees_with_float64_and_chunks_do_not_matter(monkeypatch):
    x = codes(400, 8, 9)
    f32 = torch.float32  # always the torch path: the C kernels take float64
    wide, wide_inertia = kmeans.kmeans_runs(x, runs=6, n_init=3, seed=2, dtype=f32)
    monkeypatch.setattr(kmeans, "CHUNK_ELEMENTS", 400 * 10 * 2)  # two starts per block
    narrow, narrow_inertia = kmeans.kmeans_runs(x, runs=6, n_init=3, seed=2, dtype=f32)
    np.testing.assert_array_equal(wide, narrow)
    np.testing.assert_allclose(wide_inertia, narrow_inertia, rtol=1e-6)
    labels, exact = kmeans.kmeans_runs(x, runs=6, n_init=3, seed=2)
    np.testing.assert_allclose(wide_inertia, exact, rtol=1e-4)
    np.testing.assert_array_equal(wide, labels)


def test_a_run_keeps_a_later_start_only_for_a_lower_inertia_and_another_clustering():
    first = np.array([0, 0, 1, 1, 2, 2])
    renamed = np.array([2, 2, 0, 0, 1, 1])  # the same clustering
    other = np.array([0, 1, 1, 1, 2, 2])
    merged = np.array([0, 0, 0, 0, 1, 1])  # each of its clusters holds whole ones of `first`
    labels = np.stack([first, renamed, other])
    assert kmeans._kept(labels, np.array([5.0, 5.0 - 1e-12, 6.0])) == 0
    assert kmeans._kept(labels, np.array([5.0, 5.0 - 1e-12, 4.0])) == 2
    assert kmeans._kept(labels, np.array([5.0, 5.0, 5.0])) == 0
    for a, b in itertools.product([first, renamed, other, merged], repeat=2):
        same = _is_same_clustering(a.astype(np.int32), b.astype(np.int32), 3)
        assert kmeans._same_clustering(a, b) == same
