"""k-means for many runs at once: scikit-learn's algorithm, every start of every run in one
call, in C where the kernels are built (`vaelab.models.kernels`), else batched torch.

The article's notebook called `KMeans(n_clusters=10).fit_predict(codes)` 50 times per model:
scikit-learn's defaults of 2018, k-means++ starts (the greedy variant, 2 + log k candidates
per centre) and `n_init=10` starts per call, the one of least inertia kept. Done one call at a
time that is 500 small fits per model and latent size; here all starts of all runs of one
feature matrix go to the C kernels in one call, which spread them over the threads and run
each on its own until it stops, skipping in the E-step the points whose centre Hamerly's
bounds prove unchanged (the labels stay those of the full E-step). Without the kernels (or
in float32) the starts share each torch step: the distances of every start's centres to the
points are one matrix product, the new centres another.

Each run is seeded on its own (run i: `seed + i`), its `n_init` k-means++ starts drawn in turn
from that run's generator, so a run's clustering does not depend on how many runs there are.
Lloyd's iterations follow scikit-learn's `_kmeans_single_lloyd`: centred data, labels from
||c||^2 - 2 x.c, empty clusters given the points farthest from their centres, stop when the
labels repeat or the centres move less than `tol` (1e-4 of the mean variance of the
features), then labels that match the final centres. Given the same initial centres it gives
scikit-learn's labels and inertia (`tests/test_kmeans.py`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from vaelab.models import kernels

MAX_ITER = 300  # scikit-learn's
TOL = 1e-4  # scikit-learn's, relative to the mean variance of the features
CHUNK_ELEMENTS = 1 << 19  # starts x points x clusters per block: bounds the memory
SMALL_D = 8  # up to this many features the M-step adds points, beyond it multiplies


def tolerance(x: Tensor) -> float:
    """scikit-learn's absolute tolerance: TOL times the mean variance of the features."""
    return float(x.var(dim=0, unbiased=False).mean()) * TOL


def kmeans_plusplus(x: Tensor, k: int, uniforms: Tensor, first: Tensor) -> Tensor:
    """Greedy k-means++ centres (R, k, D) of the points x (M, D), for R starts at once.

    `first` (R,) indexes each start's first centre; `uniforms` (R, k - 1, T) are the numbers
    in [0, 1) that pick each later centre's T candidates, the candidate that lowers the
    potential most winning (scikit-learn's `_kmeans_plusplus`, T = 2 + int(log k))."""
    fast = kernels.kmeans_plusplus(x, first, uniforms, k)
    if fast is not None:
        return fast
    r, m = first.shape[0], x.shape[0]
    x_sq = x.square().sum(1)  # (M,)
    centres = torch.empty(r, k, x.shape[1], dtype=x.dtype)
    centres[:, 0] = x[first]
    closest = _sq_dist(x[first].unsqueeze(1), x, x_sq).squeeze(1)  # (R, M)
    potential = closest.sum(1)  # (R,)
    rows = torch.arange(r)
    for c in range(1, k):
        targets = uniforms[:, c - 1] * potential.unsqueeze(1)  # (R, T)
        cumulative = closest.double().cumsum(1)
        ids = torch.searchsorted(cumulative, targets.double()).clamp_(max=m - 1)  # (R, T)
        dist = torch.minimum(_sq_dist(x[ids], x, x_sq), closest.unsqueeze(1))  # (R, T, M)
        pots = dist.sum(2)  # (R, T)
        best = pots.argmin(1)  # (R,)
        closest, potential = dist[rows, best], pots[rows, best]
        centres[:, c] = x[ids[rows, best]]
    return centres


def _sq_dist(c: Tensor, x: Tensor, x_sq: Tensor) -> Tensor:
    """Squared distances (R, T, M) of the points c (R, T, D) to x (M, D), at least 0."""
    cross = torch.matmul(c, x.T)  # (R, T, M)
    return (c.square().sum(-1, keepdim=True) + x_sq - 2.0 * cross).clamp_(min=0.0)


def lloyd(x: Tensor, centres: Tensor, tol: float, max_iter: int = MAX_ITER) -> tuple[Tensor, ...]:
    """Lloyd's iterations from each of R starts (R, k, D) on the points x (M, D), as
    scikit-learn runs them; returns labels (R, M), inertia (R,) and iterations (R,).
    In torch, a start that has stopped leaves the batch."""
    fast = kernels.kmeans_lloyd(x, centres.contiguous(), tol, max_iter)
    if fast is not None:
        return fast
    r, k, _ = centres.shape
    labels = torch.full((r, x.shape[0]), -1, dtype=torch.long)
    iterations = torch.zeros(r, dtype=torch.long)
    centres = centres.clone()
    strict = torch.zeros(r, dtype=torch.bool)
    active = torch.arange(r)
    for i in range(1, max_iter + 1):
        c = centres[active]
        new_labels = _assign(x, c)
        new = _update(x, c, new_labels, k)
        shift = (new - c).square().sum((1, 2))
        same = (new_labels == labels[active]).all(1)
        centres[active], labels[active] = new, new_labels
        iterations[active] = i
        strict[active] = same
        done = same | (shift <= tol)
        active = active[~done]
        if len(active) == 0:
            break
    loose = (~strict).nonzero().squeeze(1)  # labels that match the final centres
    if len(loose):
        labels[loose] = _assign(x, centres[loose])
    nearest = centres.gather(1, labels.unsqueeze(-1).expand(-1, -1, x.shape[1]))  # (R, M, D)
    inertia = (nearest - x).square().sum((1, 2))
    return labels, inertia, iterations


def _assign(x: Tensor, c: Tensor) -> Tensor:
    """Each point's nearest centre (A, M): argmin of ||c||^2 - 2 x.c, as scikit-learn."""
    a, k, d = c.shape
    flat = c.reshape(a * k, d)
    dist = torch.addmm(flat.square().sum(1).unsqueeze(0), x, flat.T, alpha=-2.0)  # (M, A k)
    return dist.view(-1, a, k).argmin(2).T.contiguous()  # one product, argmin along k


def _update(x: Tensor, c: Tensor, labels: Tensor, k: int) -> Tensor:
    """The mean of each cluster's points (A, k, D); an empty cluster takes the point
    farthest from its centre (scikit-learn's `_relocate_empty_clusters_dense`)."""
    a, m = labels.shape
    d = x.shape[1]
    cells = (labels + torch.arange(a).unsqueeze(1) * k).view(-1)  # (A M,): start a, cluster
    counts = torch.bincount(cells, minlength=a * k).view(a, k).to(x.dtype)
    if d <= SMALL_D:  # few features: add the points themselves
        sums = torch.zeros(a * k, d, dtype=x.dtype).index_add_(0, cells, x.repeat(a, 1))
    else:  # many: one product with the points' one-hot memberships
        onehot = torch.zeros(a * k, m, dtype=x.dtype)
        onehot.view(a, k, m).scatter_(1, labels.unsqueeze(1), 1.0)
        sums = onehot @ x
    sums = sums.view(a, k, d)
    for j in (counts == 0).any(1).nonzero().squeeze(1).tolist():
        _relocate(x, c[j], labels[j], sums[j], counts[j])
    return sums / counts.clamp(min=1.0).unsqueeze(-1)


def _relocate(x: Tensor, old: Tensor, labels: Tensor, sums: Tensor, counts: Tensor) -> None:
    empty = (counts == 0).nonzero().squeeze(1)
    distances = (x - old[labels]).square().sum(1)
    far = torch.argsort(distances, descending=True, stable=True)[: len(empty)]
    for cluster, point in zip(empty.tolist(), far.tolist(), strict=True):
        source = int(labels[point])
        sums[source] -= x[point]
        counts[source] -= 1
        sums[cluster] = x[point]
        counts[cluster] = 1


def starts(m: int, k: int, runs: int, n_init: int, seed: int) -> tuple[Tensor, Tensor]:
    """The random numbers of every run's k-means++ starts: first centres (runs * n_init,)
    and candidates' uniforms (runs * n_init, k - 1, T), run i's from a generator seeded
    seed + i, its n_init starts one after another."""
    trials = 2 + int(math.log(k))
    firsts, uniforms = [], []
    for i in range(runs):
        gen = torch.Generator().manual_seed(seed + i)
        for _ in range(n_init):
            firsts.append(torch.randint(m, (1,), generator=gen))
            uniforms.append(torch.rand(1, max(k - 1, 0), trials, generator=gen))
    return torch.cat(firsts), torch.cat(uniforms)


def kmeans_runs(
    features: np.ndarray,
    *,
    n_clusters: int = 10,
    runs: int = 50,
    n_init: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """`runs` k-means fits of `features` (M, D), each keeping the least-inertia of its
    `n_init` k-means++ starts (`_kept`): labels (runs, M) and inertia (runs,)."""
    x = torch.as_tensor(np.ascontiguousarray(features)).to(dtype)
    x = x - x.mean(0)  # centred, as scikit-learn does for accuracy
    m, k = x.shape[0], min(n_clusters, x.shape[0])
    first, uniforms = starts(m, k, runs, n_init, seed)
    labels, inertia = _fit(x, k, first, uniforms.to(dtype), tolerance(x))
    all_labels = labels.view(runs, n_init, m).numpy()
    all_inertia = inertia.view(runs, n_init).double().numpy()
    best = [_kept(*run) for run in zip(all_labels, all_inertia, strict=True)]
    rows = np.arange(runs)
    return all_labels[rows, best], all_inertia[rows, best]


def _kept(labels: np.ndarray, inertia: np.ndarray) -> int:
    """The start a run keeps, as scikit-learn keeps it: a later start (labels (n_init, M))
    replaces the best so far only if its inertia is lower and its clustering differs, since
    the same clustering with its clusters numbered otherwise can come out a rounding lower."""
    best = 0
    for j in range(1, len(inertia)):
        if inertia[j] < inertia[best] and not _same_clustering(labels[j], labels[best]):
            best = j
    return best


def _same_clustering(labels: np.ndarray, other: np.ndarray) -> bool:
    """Whether each cluster of `labels` lies within one cluster of `other` (scikit-learn's
    `_is_same_clustering`): as many distinct pairs of labels as distinct labels."""
    width = int(max(labels.max(), other.max())) + 1
    return len(np.unique(labels * width + other)) == len(np.unique(labels))


def _fit(x: Tensor, k: int, first: Tensor, uniforms: Tensor, tol: float) -> tuple[Tensor, Tensor]:
    """Labels (R, M) and inertia (R,) of Lloyd from each start: all in one call of the C
    kernels, else in torch blocks of starts that fit the cache."""
    centres = kernels.kmeans_plusplus(x, first, uniforms, k)
    if centres is not None:
        labels, inertia, _ = lloyd(x, centres, tol)
        return labels, inertia
    chunk = max(1, CHUNK_ELEMENTS // (x.shape[0] * k))
    labels, inertia = [], []
    for lo in range(0, len(first), chunk):
        centres = kmeans_plusplus(x, k, uniforms[lo : lo + chunk], first[lo : lo + chunk])
        found, energy, _ = lloyd(x, centres, tol)
        labels.append(found)
        inertia.append(energy)
    return torch.cat(labels), torch.cat(inertia)
