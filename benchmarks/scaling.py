"""Scaling of a study over worker processes, and a projection of converged-1000 on N nodes.

Trains the same units (the grid's AE/VAE/CVAE groups on a slice of MNIST: one unit per kind
and seed, its latent sizes trained as one stacked computation) with 1 worker and with 2,
measures the wall time of each and every unit's seconds per epoch, then projects the
converged-1000 preset (3 kinds x `--seeds` seeds = units of 4 latent sizes, 1000 epochs on
60,000 images) onto N nodes of `--node-workers` workers each, from the measured per-epoch costs:

    wall(N) = max(total work / (N x workers x efficiency), the longest unit)

where efficiency is the measured 2-worker speedup over 2. A unit is never split: the longest
unit (1000 epochs of one kind's group) bounds the wall time however many nodes there are.
The projection assumes an epoch's cost linear in its images (every step of 100 images costs
the same): a unit's seconds per epoch on `--train-size` images are scaled by 60,000 / that,
and it says so with the number of images measured.

    PYTHONPATH=src python benchmarks/scaling.py --train-size 6000 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vaelab.core.config import load_preset
from vaelab.data.mnist import load_mnist
from vaelab.execution import executors
from vaelab.execution.units import data_fingerprint, make_units

PAPER_IMAGES = 60_000


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def measure(jobs: int, args: argparse.Namespace, sha: str) -> tuple[float, dict[str, float]]:
    """(wall seconds, seconds per epoch of each unit, by kind) on `jobs` workers."""
    cfg = load_preset("converged-1000")
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for kind in cfg.models:
            for z in args.latents:
                run = cfg.run_config(kind, z)
                run = replace(
                    run,
                    train=replace(run.train, epochs=args.epochs, device="cpu"),
                    data=replace(run.data, train_size=args.train_size),
                )
                runs.append((run, Path(tmp) / f"{kind}-z{z}"))
        units = make_units(runs, data_path=None, data_sha256=sha, threads=args.threads)
        started = time.perf_counter()
        results = executors.process_pool(jobs, threads=args.threads)(units)
        wall = time.perf_counter() - started
        failed = [r for r in results if "error" in r]
        if failed:
            raise SystemExit(f"a unit failed: {failed[0]}")
        per_epoch = {}  # a unit's epoch: every member logs its group's seconds
        for unit in units:
            run_dir = Path(unit.members[0].run_dir)
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
            per_epoch[run_dir.name.split("-")[0]] = sum(r["seconds"] for r in rows) / len(rows)
    return wall, per_epoch


def project(per_epoch: dict[str, float], args: argparse.Namespace, efficiency: float) -> None:
    scale = PAPER_IMAGES / args.train_size  # an epoch's cost grows with its images
    cfg = load_preset("converged-1000")
    costs = [per_epoch[kind] * scale for kind in cfg.models] * args.seeds  # one unit each
    epochs = cfg.train.epochs
    total = sum(costs) * epochs
    longest = max(costs) * epochs
    print(f"\nprojection: converged-1000, {len(costs)} units (kind x seed) x {epochs} epochs")
    print(
        f"  assumes an epoch's cost linear in its images: measured on {args.train_size} "
        f"training images, scaled x{scale:.3g} to {PAPER_IMAGES}"
    )
    print(f"  total work {total / 3600:.1f} worker-hours; longest unit {longest / 3600:.1f} h")
    print(f"  {'nodes':>5} {'workers':>8} {'wall (h)':>9}")
    for nodes in sorted({1, 2, 4, 8, -(-len(costs) // args.node_workers)}):
        workers = nodes * args.node_workers
        wall = max(total / (workers * efficiency), longest)
        print(f"  {nodes:>5} {workers:>8} {wall / 3600:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--latents", type=int, nargs="+", default=[2, 4, 16, 64])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--node-workers", type=int, default=2, help="workers per node")
    args = parser.parse_args()
    sha = data_fingerprint(load_mnist())
    print(f"{'workers':>7} {'wall (s)':>9} {'speedup':>8} {'mean s/epoch':>13}  load before/after")
    base = None
    efficiency, per_epoch = 1.0, {}
    for jobs in (1, 2):
        before = load()
        wall, per_epoch_j = measure(jobs, args, sha)
        base = base or wall
        mean = sum(per_epoch_j.values()) / len(per_epoch_j)
        print(f"{jobs:>7} {wall:>9.1f} {base / wall:>8.2f} {mean:>13.3f}  {before}/{load()}")
        if jobs == 1:
            per_epoch = per_epoch_j
        else:
            efficiency = min(1.0, base / wall / 2)
    project(per_epoch, args, efficiency)


if __name__ == "__main__":
    main()
