"""The C k-means (`kernels.kmeans_plusplus`, `kernels.kmeans_lloyd`) against the batched torch
path and scikit-learn: the same starts, labels, iterations and inertia, on any thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.cluster._kmeans import _kmeans_plusplus
from sklearn.datasets import make_blobs

from test_kmeans import codes
from vaelab.experiments import kmeans
from vaelab.models import kernels

pytestmark = pytest.mark.skipif(
    kernels._load()[0] is None, reason=f"no C kernels here: {kernels.kernels_status()}"
)


def blobs(m: int, d: int, seed: int) -> np.ndarray:
    """Ten overlapping Gaussian clusters off the origin, as a model's codes look."""
    x, _ = make_blobs(m, d, centers=10, cluster_std=2.5, center_box=(-8, 12), random_state=seed)
    return x


def near_ties(seed: int) -> np.ndarray:
    """Four clusters mirrored in the planes x = 0 and y = 0, and points 1e-11 to 1e-6 off those
    planes: their distances to two mirrored centres differ by far more than rounding but by too
    little for the C kernels' bounds, which must compute them."""
    rng = np.random.default_rng(seed)
    quadrant = rng.normal([3.0, 3.0, 0.0], 1.0, (60, 3))
    off = 10.0 ** rng.uniform(-11, -6, (2, 25)) * rng.choice([-1.0, 1.0], (2, 25))
    by_x = np.column_stack([off[0], rng.normal(3.0, 1.0, 25), rng.normal(0.0, 1.0, 25)])
    by_y = np.column_stack([rng.normal(3.0, 1.0, 25), off[1], rng.normal(0.0, 1.0, 25)])
    half = np.concatenate([quadrant, by_x, by_y])
    signs = [np.array([sx, sy, 1.0]) for sx in (1, -1) for sy in (1, -1)]
    return np.concatenate([half * s for s in signs])


def exact_ties(seed: int) -> np.ndarray:
    """Half-integers mirrored through the origin, so the mean is 0 and the first E-step and
    relocation are exact: exact ties in distance, to pairs of equal centres and among the
    farthest points (arms at (+-30, 0, +-12), each given twice)."""
    rng = np.random.default_rng(seed)
    cloud = rng.integers(-6, 7, (60, 3)) / 2.0
    arms = np.array([[30, 0, 12], [30, 0, 12], [30, 0, -12], [30, 0, 0], [30, 0, 0]], float)
    half = np.concatenate([arms, cloud])
    return np.concatenate([half, -half])


def centred(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x - x.mean(0))


def plus_plus_starts(x: torch.Tensor, k: int, runs: int = 2, n_init: int = 3, seed: int = 0):
    first, uniforms = kmeans.starts(len(x), k, runs, n_init, seed)
    return first, uniforms.double()


def torch_path(fn, *args, **kwargs):
    with kernels.turned_off():
        return fn(*args, **kwargs)


def assert_lloyd_agrees(
    x: np.ndarray, start: torch.Tensor, max_iter: int = kmeans.MAX_ITER, *, with_torch: bool = True
):
    """C, torch and scikit-learn from the starts (R, k, D) on the points x, centred here."""
    c = centred(x)
    tol = kmeans.tolerance(c)
    labels, inertia, iterations = kernels.kmeans_lloyd(c, start, tol, max_iter)
    if with_torch:
        ref_labels, ref_inertia, ref_iters = torch_path(kmeans.lloyd, c, start, tol, max_iter)
        assert torch.equal(labels, ref_labels)
        assert torch.equal(iterations, ref_iters)
        torch.testing.assert_close(inertia, ref_inertia, rtol=1e-9, atol=0.0)
    for j, init in enumerate(start.numpy()):
        ref = KMeans(len(init), init=init + x.mean(0), n_init=1, algorithm="lloyd")
        ref = ref.set_params(max_iter=max_iter).fit(x)
        np.testing.assert_array_equal(labels[j].numpy(), ref.labels_)
        assert int(iterations[j]) == ref.n_iter_
        assert float(inertia[j]) == pytest.approx(ref.inertia_, rel=1e-9)
    return labels


@pytest.mark.parametrize("d", [2, 4, 16, 64])
def test_lloyd_from_kmeans_plus_plus_starts_is_torchs_and_scikit_learns(d):
    x = blobs(1000, d, seed=d)
    c = centred(x)
    starts = kernels.kmeans_plusplus(c, *plus_plus_starts(c, 10, seed=d), 10)
    labels = assert_lloyd_agrees(x, starts)
    assert len({tuple(row.tolist()) for row in labels}) > 1  # the starts really differ


@pytest.mark.parametrize("k", [1, 3, 10, 16])
def test_lloyd_on_overlapping_clouds_for_each_lane_count(k):
    x = codes(400, 5, seed=k)
    c = centred(x)
    assert_lloyd_agrees(x, kernels.kmeans_plusplus(c, *plus_plus_starts(c, k, seed=k), k))


def test_near_ties_get_the_labels_of_the_exact_distances():
    x = near_ties(seed=0)
    c = centred(x)
    mirrored = torch.tensor([[3.0, 3.0, 0.0], [-3.0, 3.0, 0.0], [3.0, -3.0, 0.0], [-3, -3, 0.0]])
    starts = torch.stack([mirrored, mirrored.flip(0), c[[0, 150, 300, 400]]])  # (3, 4, 3)
    labels = assert_lloyd_agrees(x, starts.double().contiguous())[0].numpy()
    # each near point lies on its own side of the plane, with the centre on that side
    means = np.stack([x[labels == j].mean(0) for j in range(4)])  # (4, 3)
    for axis in (0, 1):
        near = np.abs(x[:, axis]) < 1e-5
        assert near.sum() == 100
        np.testing.assert_array_equal(np.sign(means[labels[near], axis]), np.sign(x[near, axis]))


def test_an_exact_tie_goes_to_the_first_centre_and_the_empty_one_is_relocated():
    x = blobs(600, 4, seed=5)
    c = centred(x)
    start = c[[3, 10, 40, 77, 150, 300]].clone()
    start[4] = start[1]  # every point as near to centre 4 as to 1: centre 4 starts empty
    # (not against torch: its matrix product can round two equal columns differently)
    labels = assert_lloyd_agrees(x, start.unsqueeze(0), max_iter=1, with_torch=False)
    assert len(np.unique(labels.numpy())) == 6  # the relocated centre took points at once
    assert_lloyd_agrees(x, start.unsqueeze(0), with_torch=False)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")  # the arms repeat points
@pytest.mark.parametrize("max_iter", [1, kmeans.MAX_ITER])
def test_exact_ties_go_to_the_first_centre_and_the_first_farthest_point(max_iter):
    x = exact_ties(seed=0)
    c = centred(x)
    assert torch.equal(c, torch.from_numpy(x))  # the mean is exactly 0
    # point 8 three times: two clusters start empty and take the first two of the three
    # farthest points, (-30, 0, 12) twice and (-30, 0, -12), all as far from (-20, 0, 0)
    arm = torch.tensor([[-20.0, 0.0, 0.0]], dtype=torch.float64)
    starts = torch.stack(
        [torch.cat([c[ids], arm]) for ids in ([3, 8, 5, 20, 8, 8], [5, 8, 3, 8, 20, 8])]
    )
    labels = assert_lloyd_agrees(x, starts.contiguous(), max_iter)
    if max_iter == 1:  # the two equal centres then tie for (-30, 0, 12): the first takes it
        assert (labels[0] == 5).sum() == 0 and (labels[0] == 4).sum() == 2


def test_iterations_stop_at_max_iter_and_zero_iterations_label_by_the_starts():
    x = blobs(500, 3, seed=7)
    c = centred(x)
    starts = kernels.kmeans_plusplus(c, *plus_plus_starts(c, 10, seed=7), 10)
    labels, _, iterations = kernels.kmeans_lloyd(c, starts, 0.0, 3)
    assert (iterations == 3).all()
    assert torch.equal(labels, torch_path(kmeans.lloyd, c, starts, 0.0, 3)[0])
    labels, inertia, iterations = kernels.kmeans_lloyd(c, starts, 0.0, 0)
    nearest = torch.cdist(c.unsqueeze(0), starts).square().min(2)  # (R, M)
    assert torch.equal(labels, nearest.indices) and (iterations == 0).all()
    torch.testing.assert_close(inertia, nearest.values.sum(1), rtol=1e-9, atol=0.0)


class SameNumbers:
    """A random state for scikit-learn's k-means++ that hands out the given numbers."""

    def __init__(self, first: int, uniforms: np.ndarray):
        self.first, self.uniforms = first, iter(uniforms)

    def choice(self, n, p=None):
        return self.first

    def uniform(self, size=None):
        return next(self.uniforms)


@pytest.mark.parametrize(("d", "k"), [(2, 10), (4, 10), (16, 16), (64, 10), (5, 3)])
def test_kmeans_plus_plus_picks_scikit_learns_and_torchs_centres(d, k):
    x = centred(blobs(800, d, seed=d + k))
    first, uniforms = plus_plus_starts(x, k, runs=3, n_init=2, seed=d)
    ours = kernels.kmeans_plusplus(x, first, uniforms, k)
    assert torch.equal(ours, torch_path(kmeans.kmeans_plusplus, x, k, uniforms, first))
    norms, weights = x.square().sum(1).numpy(), np.ones(len(x))
    for j in range(len(first)):
        numbers = SameNumbers(int(first[j]), uniforms[j].numpy())
        theirs, _ = _kmeans_plusplus(x.numpy(), k, norms, weights, numbers, uniforms.shape[2])
        np.testing.assert_array_equal(ours[j].numpy(), theirs)
    assert len({tuple(start.flatten().tolist()) for start in ours}) == len(first)


def test_results_do_not_depend_on_the_thread_count():
    x = centred(blobs(700, 8, seed=3))
    first, uniforms = plus_plus_starts(x, 10, runs=4, n_init=4, seed=3)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            starts = kernels.kmeans_plusplus(x, first, uniforms, 10)
            results.append((starts, *kernels.kmeans_lloyd(x, starts, kmeans.tolerance(x), 300)))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*results, strict=True):
        assert torch.equal(one, two)


def test_the_fallback_gives_the_same_runs(monkeypatch):
    x = blobs(800, 4, seed=11)
    labels, inertia = kmeans.kmeans_runs(x, runs=5, n_init=4, seed=3)
    ref_labels, ref_inertia = torch_path(kmeans.kmeans_runs, x, runs=5, n_init=4, seed=3)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(inertia, ref_inertia, rtol=1e-9)
    monkeypatch.setattr(kernels, "_load", lambda: (None, "torch ops: VAELAB_KERNELS is off"))
    c = centred(x)
    assert kernels.kmeans_plusplus(c, *plus_plus_starts(c, 10), 10) is None
    assert kernels.kmeans_lloyd(c, c[:10].unsqueeze(0), 1e-4, 300) is None


def test_the_kernels_decline_what_they_do_not_serve():
    x = centred(blobs(300, 3, seed=1))
    first, uniforms = plus_plus_starts(x, 17)
    assert kernels.kmeans_plusplus(x, first, uniforms, 17) is None  # more than MAX_CLUSTERS
    assert kernels.kmeans_plusplus(x.float(), first, uniforms.float(), 10) is None
    assert kernels.kmeans_lloyd(x, x[:17].unsqueeze(0), 1e-4, 300) is None
    assert kernels.kmeans_lloyd(x.T.contiguous().T, x[:5].unsqueeze(0), 1e-4, 300) is None
    first, uniforms = plus_plus_starts(x, 10)
    with pytest.raises(ValueError, match="do not fit"):
        kernels.kmeans_plusplus(x, first + 300, uniforms, 10)  # past the last point
    with pytest.raises(ValueError, match="do not fit"):
        kernels.kmeans_lloyd(x, x[:5, :2].unsqueeze(0).contiguous(), 1e-4, 300)
