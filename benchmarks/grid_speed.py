"""Training speed against the arithmetic floor: one VAE, the grid, seeds, and memory.

All measured in one process, so the ratios hold on a machine whose absolute speed differs:
- the floor: the exact matmuls of a training step (forward and backward, each model at its own
  shapes, no elementwise work) timed with torch.mm, times the steps of an epoch;
- vaelab's epoch of one VAE (z = 16, k = 5, batch 100): a training group of one;
- a careful eager loop: the same VAE, k samples batched, stock autograd, stock loss, Adam;
- the grid (AE, VAE, CVAE x z = 2, 4, 16, 64) as vaelab's study trains it: one group per kind;
- the grid with 3 seeds, one group per kind across latents and seeds;
- optionally (--rss) the quick study's peak resident memory, in a child process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from vaelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data import MNIST, load_mnist
from vaelab.group import GroupTrainer, Member, compact_data
from vaelab.models import build_model

KINDS, LATENTS = ("ae", "vae", "cvae"), (2, 4, 16, 64)


def step_matmuls(m: ModelConfig, batch: int, k: int) -> list[tuple[int, int, int]]:
    """(rows, inner, cols) of every matmul in one training step of one model."""
    b, d, h, z = batch, m.input_dim, m.hidden, m.latent
    labels = m.embed if m.kind == "cvae" else 0
    heads, kb = (2 if m.kind != "ae" else 1) * z, (k if m.kind != "ae" else 1) * batch
    forward = [(b, d, h), (b, h + labels, heads), (kb, z, h), (kb, h, d)]
    backward = [(d, kb, h), (kb, d, h), (h, kb, z), (kb, h, z), (heads, b, h + labels)]
    backward += [(b, heads, h + labels), (h, b, d)]
    if labels:
        forward += [(b, labels, d)]
        backward += [(d, b, labels), (b, d, labels)]
    return forward + backward


def floor_seconds(m: ModelConfig, batch: int, k: int, steps: int, repeat: int = 30) -> float:
    """Seconds per epoch of `m`'s matmuls alone, at this machine's rate for their shapes."""
    pairs = [(torch.rand(r, i), torch.rand(i, c)) for r, i, c in step_matmuls(m, batch, k)]
    outs = [torch.empty(r, c) for r, _, c in step_matmuls(m, batch, k)]

    def step() -> None:
        for (a, b), out in zip(pairs, outs, strict=True):
            torch.mm(a, b, out=out)

    return best_of(step, repeat) * steps


def flops(m: ModelConfig, batch: int, k: int, steps: int) -> float:
    return 2.0 * steps * sum(r * i * c for r, i, c in step_matmuls(m, batch, k))


CLOCK = time.perf_counter  # --clock cpu: this process's CPU time, for a busy machine


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timed calls after one warm-up: the least disturbed by others."""
    fn()
    times = []
    for _ in range(repeat):
        started = CLOCK()
        fn()
        times.append(CLOCK() - started)
    return min(times)


def run_config(kind: str, z: int, seed: int, n: int) -> RunConfig:
    return RunConfig(
        ModelConfig(kind=kind, latent=z),
        TrainConfig(seed=seed, device="cpu"),
        DataConfig(train_size=n, test_size=100),
    )


def group_epoch(mnist: MNIST, cfgs: list[RunConfig], epochs: int) -> float:
    """Seconds of one training epoch of `cfgs` as one group (best of `epochs`)."""
    images = torch.from_numpy(mnist.x_train)
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-") as tmp:
        members = [
            Member(c, compact_data(mnist, c, "cpu", images), Path(tmp) / str(i))
            for i, c in enumerate(cfgs)
        ]
        trainer = GroupTrainer(members)
        return best_of(trainer.train_epoch, epochs)


def grid_epoch(mnist: MNIST, seeds: int, n: int, epochs: int) -> float:
    return sum(
        group_epoch(
            mnist, [run_config(kind, z, s, n) for s in range(seeds) for z in LATENTS], epochs
        )
        for kind in KINDS
    )


def eager_epoch_fn(mnist: MNIST, cfg: RunConfig) -> Callable[[], None]:
    """A careful eager loop: batched k samples, stock autograd, stock loss, stock Adam."""
    t, n = cfg.train, cfg.data.train_size
    x = torch.from_numpy(mnist.x_train[:n]).float().div_(255.0)
    torch.manual_seed(t.seed)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    order_gen, noise_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

    def epoch() -> None:
        order = torch.randperm(n, generator=order_gen)
        for start in range(0, n, t.batch_size):
            xb = x.index_select(0, order[start : start + t.batch_size])
            mu, ln_var = model.encode(xb)
            eps = torch.randn((t.n_samples, *mu.shape), generator=noise_gen)
            logits = model.decode(mu + eps * torch.exp(0.5 * ln_var))  # (k, B, 784)
            rec = (
                F.binary_cross_entropy_with_logits(logits, xb.expand_as(logits), reduction="sum")
                / logits.shape[:2].numel()
            )
            kl = -0.5 * torch.sum(1 + ln_var - mu.pow(2) - ln_var.exp()) / len(xb)
            loss = rec + t.kl_weight * kl
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


def quick_study_rss(out: Path) -> float:
    """Peak resident memory (GB) of `vaelab study quick` run in a child process."""
    subprocess.run(
        [sys.executable, "-m", "vaelab", "study", "--preset", "quick", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (best reported)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: time by this process's CPU time (with --threads 1, on a busy machine)",
    )
    parser.add_argument("--rss", action="store_true", help="also run the quick study for RSS")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        global CLOCK
        CLOCK = time.process_time
    load_before = loadavg()
    mnist = load_mnist()
    n = args.train_size
    steps = -(-n // 100)
    vae = run_config("vae", 16, 0, n)
    vae_floor = floor_seconds(vae.model, 100, 5, steps)
    gflop = flops(vae.model, 100, 5, steps) / 1e9
    vae_s = group_epoch(mnist, [vae], args.epochs)
    eager_s = best_of(eager_epoch_fn(mnist, vae), args.epochs)
    grid_floor = sum(
        floor_seconds(run_config(kind, z, 0, n).model, 100, 5, steps)
        for kind in KINDS
        for z in LATENTS
    )
    grid_s = grid_epoch(mnist, 1, n, args.epochs)
    seeds_s = grid_epoch(mnist, args.seeds, n, args.epochs)
    rows = [
        (
            "matmul floor, VAE z=16",
            vae_floor,
            f"{gflop / vae_floor:.0f} GFLOP/s, {gflop:.1f} GFLOP",
        ),
        ("vaelab, VAE z=16", vae_s, f"{vae_s / vae_floor:.2f}x floor (target <= 1.5)"),
        ("careful eager loop", eager_s, f"{eager_s / vae_s:.2f}x vaelab (target >= 2)"),
        ("grid floor, 12 models", grid_floor, ""),
        ("vaelab grid, 12 models", grid_s, f"{grid_s / grid_floor:.2f}x floor (target <= 1.5)"),
        (
            f"vaelab grid, {args.seeds} seeds",
            seeds_s,
            f"{seeds_s / (args.seeds * grid_s):.2f}x {args.seeds} x one seed (target <= 1)",
        ),
    ]
    scale = 60000 / n
    print(f"{'':<26}{'s/epoch':>9}{'at 60k':>9}  ratio")
    for name, seconds, note in rows:
        print(f"{name:<26}{seconds:>9.3f}{seconds * scale:>9.2f}  {note}")
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{torch.backends.cpu.get_cpu_capability()}, {n} images, "
        f"{args.clock} clock, load average {load_before} before, {loadavg()} after"
    )
    paper_hours = 1000 * args.seeds * seeds_s / args.seeds * scale / 3600
    print(f"projected paper preset training (1000 epochs, {args.seeds} seeds): {paper_hours:.1f} h")
    if args.rss:
        with tempfile.TemporaryDirectory(prefix="vaelab-rss-") as tmp:
            print(f"quick study peak RSS: {quick_study_rss(Path(tmp) / 'study'):.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
