"""k-means as the article's clustering needs it: 50 runs of n_init = 10 on 2,000 codes.

vaelab's batched torch Lloyd (`vaelab.experiments.kmeans`, every start of every run at once)
beside scikit-learn called the way the notebook called it (one `KMeans(n_clusters=10,
n_init=10)` per run), on the first principal components of 2,000 MNIST test images at each of
the study's latent sizes (codes stand-ins with MNIST's own structure), and on the raw pixels.
Also prints what the article preset's k-means costs per seed: at each of its 3 latent sizes,
4 rows at the last step, 3 at each of the milestones 250 and 500 and on the training images,
1 for the AE trained the other way.

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

from vaelab.data.mnist import load_mnist
from vaelab.experiments.kmeans import kmeans_runs

PER_Z = 4 + 2 * 3 + 3 + 1  # feature matrices per seed and latent size in the article preset


def features(images: int, dims: int | None) -> np.ndarray:
    x = load_mnist().x_test[:images].astype(np.float32) / 255
    if dims is None:
        return x
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:dims].T


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


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
    print(f"{args.runs} runs x n_init {args.n_init}, {args.images} images, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print("features     vaelab s   scikit-learn s   ratio")
    per_seed = 0.0
    for dims in (4, 16, 64, None):
        if dims is None and args.skip_pixels:
            continue
        x = features(args.images, dims)
        ours = timed(lambda x=x: kmeans_runs(x, runs=args.runs, n_init=args.n_init))

        def theirs(x=x) -> None:
            with threadpool_limits(torch.get_num_threads()):
                for i in range(args.runs):
                    KMeans(10, n_init=args.n_init, random_state=i, algorithm="lloyd").fit(x)

        sk = timed(theirs)
        name = "pixels" if dims is None else f"z = {dims}"
        print(f"{name:<10}{ours:>11.2f}{sk:>17.2f}{sk / ours:>8.1f}x")
        per_seed += ours * PER_Z * (dims is not None)
    print(f"article preset, k-means per seed (pixels once per study): {per_seed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
