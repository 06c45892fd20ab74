"""k-means as the article's clustering needs it: 50 runs of n_init = 10 on 2,000 codes.

vaelab's k-means (`vaelab.experiments.kmeans`) on its two paths, the C kernels (each start
on its own, the starts spread over the threads) and the batched torch Lloyd they fall back to
(every start of every run at once), beside scikit-learn called the way the notebook called it
(one `KMeans(n_clusters=10, n_init=10)` per run). The features are the first principal
components of 2,000 MNIST test images at each of the study's latent sizes (stand-ins for codes
with MNIST's own structure), and the raw pixels. Times are in seconds, the ratios say how many
times longer than the C path each other takes, and "same" whether the two paths kept the same
labels. Also prints what the article preset's k-means costs per seed on each path: at each
latent size it clusters, 4 rows at the last step, 3 at each of the milestones 250 and 500 and
on the training images, 1 for the AE trained the other way.

    PYTHONPATH=src python benchmarks/kmeans_speed.py               # an idle machine
    PYTHONPATH=src python benchmarks/kmeans_speed.py --runs 5       # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from vaelab.core.config import ExperimentConfig
from vaelab.data.mnist import load_mnist
from vaelab.experiments.kmeans import kmeans_runs
from vaelab.models import kernels

LATENTS = (2, 4, 16, 64)  # the study's latent sizes
PER_Z = 4 + 2 * 3 + 3 + 1  # feature matrices per seed and latent size in the article preset


def features(images: int, dims: int | None) -> np.ndarray:
    x = load_mnist().x_test[:images].astype(np.float32) / 255
    if dims is None:
        return x
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:dims].T


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def scikit_learn(x: np.ndarray, runs: int, n_init: int) -> None:
    with threadpool_limits(torch.get_num_threads()):
        for i in range(runs):
            KMeans(10, n_init=n_init, random_state=i, algorithm="lloyd").fit(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--skip-pixels", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"{args.runs} runs x n_init {args.n_init}, {args.images} images, torch threads "
          f"{torch.get_num_threads()}, k-means in {kernels.kernels_status()}")  # fmt: skip
    print("features        C s   torch s   scikit-learn s   torch/C   scikit-learn/C   same")
    clustered = set(ExperimentConfig().recon_latents)
    per_seed = {"C": 0.0, "torch": 0.0}
    for dims in (*LATENTS, *((None,) if not args.skip_pixels else ())):
        x = features(args.images, dims)
        ours, (labels, _) = timed(lambda x=x: kmeans_runs(x, runs=args.runs, n_init=args.n_init))
        with kernels.turned_off():
            batched, (ref, _) = timed(
                lambda x=x: kmeans_runs(x, runs=args.runs, n_init=args.n_init)
            )
        sk, _ = timed(lambda x=x: scikit_learn(x, args.runs, args.n_init))
        name = "pixels" if dims is None else f"z = {dims}"
        same = "yes" if np.array_equal(labels, ref) else "no"
        print(f"{name:<10}{ours:>9.2f}{batched:>10.2f}{sk:>17.2f}"
              f"{batched / ours:>9.1f}x{sk / ours:>16.1f}x{same:>7}")  # fmt: skip
        if dims in clustered:
            per_seed["C"] += ours * PER_Z
            per_seed["torch"] += batched * PER_Z
    print(f"article preset, k-means per seed at z in {sorted(clustered)} (pixels once per "
          f"study): C {per_seed['C']:.1f} s, torch {per_seed['torch']:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
