"""A sweep of M2's training settings at one label count: test error at the best validation
epoch for each point of a grid of classification weights, learning rates and labelled images
per step (the table of docs/m2.md).

Each point trains one M2 (Kingma et al.'s sizes unless --article) into its own run folder under
--out, named by its settings, so a rerun skips the points already trained and resumes the one
that was cut. The table goes to stdout and to <out>/sweep.json.

    OMP_NUM_THREADS=1 python scripts/m2_sweep.py --out runs/m2-sweep --labels 100 --epochs 6 \\
        --weights 0.1 1 10 100 --lrs 3e-4 1e-3
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from vaelab.core import fileio
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.folders import RunFolder
from vaelab.data.mnist import load_mnist
from vaelab.data.tensors import compact_data
from vaelab.training.identity import is_finished, run_name
from vaelab.training.trainer import TrainingRun, train_group

PAPER = {"hidden": (500,), "activation": "softplus", "label_at": "input"}


def point_config(args: argparse.Namespace, weight: float, lr: float, labelled: int) -> RunConfig:
    model = ModelConfig(kind="m2", latent=args.latent, **({} if args.article else PAPER))
    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch, lr=lr, beta1=args.beta1, kl_weight=1.0,
        n_samples=1, classification_weight=weight, labelled_batch=labelled, seed=args.seed,
        checkpoint_every=1, eval_every=1, device="cpu",
    )  # fmt: skip
    data = DataConfig(
        train_size=args.train_size, test_size=None, n_labelled=args.labels,
        validation=args.validation,
    )  # fmt: skip
    return RunConfig(model, train, data).validate()


def best_validation(rows: list[dict]) -> dict:
    """The epoch with the lowest validation error (the first of ties), its test error, and the
    last epoch's."""
    rows = [r for r in rows if "validation_error" in r]
    best = min(rows, key=lambda r: r["validation_error"])
    return {
        "epochs": rows[-1]["epoch"],
        "best_epoch": best["epoch"],
        "validation_error": best["validation_error"],
        "test_error": best["test_error"],
        "last_test_error": rows[-1]["test_error"],
        "curve": [round(100 * r["test_error"], 2) for r in rows],
    }


def points_in(out: Path) -> list[dict]:
    """Every finished M2 run under `out`: its weight, learning rate, labelled images per step
    and best validation epoch, in the order they finished."""
    found = []
    for folder in sorted(out.iterdir(), key=lambda p: p.stat().st_mtime):
        record = RunFolder(folder).read_record() if folder.is_dir() else None
        if record is None:
            continue
        t = record["config"]["train"]
        found.append({"weight": t["classification_weight"], "lr": t["lr"],
                      "labelled_batch": t["labelled_batch"], "run": folder.name,
                      **best_validation(RunFolder(folder).read_metrics())})  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--weights", type=float, nargs="+", default=[0.1])
    p.add_argument("--lrs", type=float, nargs="+", default=[3e-4])
    p.add_argument("--labelled-batch", type=int, nargs="+", default=[100])
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--latent", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--validation", type=int, default=10000)
    p.add_argument("--article", action="store_true", help="the article's CVAE wiring and sizes")
    args = p.parse_args(argv)
    mnist = load_mnist()
    grid = itertools.product(args.weights, args.lrs, args.labelled_batch)
    for weight, lr, labelled in grid:
        cfg = point_config(args, weight, lr, labelled)
        run_dir = args.out / run_name(cfg)
        started = time.perf_counter()
        if not is_finished(run_dir, cfg):
            train_group([TrainingRun(cfg, compact_data(mnist, cfg), run_dir)], resume=True)
        found = best_validation(RunFolder(run_dir).read_metrics())
        row = {"weight": weight, "lr": lr, "labelled_batch": labelled, **found,
               "run": run_dir.name, "seconds_here": time.perf_counter() - started}  # fmt: skip
        print(json.dumps(row), flush=True)
    table = points_in(args.out)  # every point trained into --out so far, this run's among them
    fileio.write_json(args.out / "sweep.json", {"points": table})
    print("weight      lr  labelled  epochs  best  val %  test % (best val)  test % (last)")
    for r in table:
        print(f"{r['weight']:>6g} {r['lr']:>7g} {r['labelled_batch']:>9} {r['epochs']:>7} "
              f"{r['best_epoch']:>5} {100 * r['validation_error']:>6.2f} "
              f"{100 * r['test_error']:>19.2f} {100 * r['last_test_error']:>14.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
