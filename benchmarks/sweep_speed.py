"""A sweep of n values of C costs n grids, not more: C is a per-member weight in one group.

In one process, in interleaved rounds, each row its fastest round (as grid_speed.py):
- one grid: the VAE and the CVAE at z = 2, 4, 16, 64, one group per kind (the AE has no C and
  a sweep shares it, so it is left out of both rows);
- the sweep: the same kinds at every (z, C) for C in --weights, one group per kind holding all
  of them, as the study's units train it;
- n grids in a row, the reference: the ratio sweep / (n grids) is the target (<= 1.05).

    .venv/bin/python benchmarks/sweep_speed.py --train-size 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from grid_speed import LATENTS, Groups, interleaved, run_config  # noqa: E402
from vaelab.core.config import RunConfig  # noqa: E402
from vaelab.data.mnist import load_mnist  # noqa: E402
from vaelab.models import kernels  # noqa: E402


def with_c(cfg: RunConfig, c: float) -> RunConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, kl_weight=c))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    mnist, n, weights = load_mnist(), args.train_size, args.weights
    kinds = ("vae", "cvae")
    with tempfile.TemporaryDirectory(prefix="vaelab-sweep-") as tmp:
        grid = Groups(mnist, [[run_config(k, z, 0, n) for z in LATENTS] for k in kinds],
                      Path(tmp) / "grid")  # fmt: skip
        sweep_groups = [
            [with_c(run_config(k, z, 0, n), c) for c in weights for z in LATENTS] for k in kinds
        ]
        sweep = Groups(mnist, sweep_groups, Path(tmp) / "sweep")
        rows = {
            "grid": grid.epoch,
            "sweep": sweep.epoch,
            "grids": lambda: [grid.epoch() for _ in weights],
        }
        times = interleaved(rows, args.rounds)
    best = {name: min(t) for name, t in times.items()}
    m = len(weights)
    print(f"{'':<36}{'s/epoch':>9}  ratio")
    print(f"{'one grid (VAE, CVAE x 4 z)':<36}{best['grid']:>9.3f}")
    print(f"{f'{m} grids in a row':<36}{best['grids']:>9.3f}")
    print(
        f"{f'sweep of {m} C in one group per kind':<36}{best['sweep']:>9.3f}  "
        f"{best['sweep'] / best['grids']:.3f}x {m} grids (target <= 1.05)"
    )
    print(
        f"best of {args.rounds} interleaved rounds; C = {weights}; torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, step: {kernels.kernels_status()}, {n} images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
