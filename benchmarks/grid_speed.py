"""Training speed against the arithmetic floor: one VAE, the grid, seeds, and memory.

All measured in one process, in interleaved rounds, so the ratios hold on a machine whose
absolute speed differs, and drifts: a shared machine can run at two thirds of its speed for
minutes. Each round times every row once, one after another; each row reports its fastest
round, the one least disturbed by the rest of the machine (the first round is also the
warm-up: allocator, thread pool, first-call dispatch).
- the floor: the exact matmuls of an epoch's training steps (forward and backward, each model at
  its own shapes, no elementwise work) run with torch.mm for a whole epoch of steps, so it is
  timed over the same stretch of time as the epochs it is compared with;
- vaelab's epoch of one VAE (z = 16, k = 5, batch 100): a training group of one, with the fused
  C kernels, and again with torch ops (`VAELAB_KERNELS=0`);
- a careful eager loop: the same VAE, k samples batched, stock autograd, stock loss, Adam;
- the grid (AE, VAE, CVAE x z = 2, 4, 16, 64) as vaelab's study trains it: one group per kind;
- the grid as the study itself trains it (`study.grid.train_grid`: work units through
  `run_unit`, with test evaluation, checkpoints, milestones and the progress view), per epoch as
  the difference of a 3-epoch and a 1-epoch study divided by 2, so start-up and the final
  save drop out, beside 3 epochs of the benchmark's grid in the same round;
- the grid with several seeds, one group per kind and seed, as the study's work units, against
  as many epochs of one seed's grid in a row (the same stretch of time: a ratio of times that
  long is not skewed by the fastest moments of a shorter one);
- two elementwise passes, each beside the stock op it replaces, over an epoch of steps at the
  article's shapes: vaelab's Bernoulli NLL (`losses.bernoulli_nll`, forward and backward on
  (k, B, 784) logits) beside `binary_cross_entropy_with_logits`, with torch ops (as on a GPU)
  and with the C kernel the autograd step takes on a CPU, and the stacked step's tanh
  without the kernels (`stacked._tanh_`: 2 sigmoid(2a) - 1, in place) beside `torch.tanh_`,
  on the grid's hidden layers; each printed as a ratio, the numbers the code's comments cite;
- optionally (--rss) the quick study's peak resident memory, in a child process.

The "at 60k" column and the projection assume an epoch's cost linear in its images (every
step costs the same): a `--train-size` run measures that many images and scales by 60,000 / n.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from torch.nn import functional as F

from vaelab.core.config import DataConfig, ModelConfig, RunConfig, StudyConfig, TrainConfig
from vaelab.data.mnist import MNIST, load_mnist
from vaelab.data.tensors import compact_data
from vaelab.models import kernels
from vaelab.models.kinds import build_model
from vaelab.models.losses import bernoulli_nll
from vaelab.study.grid import train_grid
from vaelab.training.stacked import _tanh_
from vaelab.training.trainer import GroupTrainer, TrainingRun

KINDS, LATENTS = ("ae", "vae", "cvae"), (2, 4, 16, 64)


def step_matmuls(m: ModelConfig, batch: int, k: int) -> list[tuple[int, int, int]]:
    """(rows, inner, cols) of every matmul in one training step of one model."""
    (h,) = m.hidden  # the article's one hidden layer
    b, d, z = batch, m.input_dim, m.latent
    labels = m.embed if m.kind == "cvae" else 0
    heads, kb = (2 if m.kind != "ae" else 1) * z, (k if m.kind != "ae" else 1) * batch
    forward = [(b, d, h), (b, h + labels, heads), (kb, z, h), (kb, h, d)]
    backward = [(d, kb, h), (kb, d, h), (h, kb, z), (kb, h, z), (heads, b, h + labels)]
    backward += [(b, heads, h + labels), (h, b, d)]
    if labels:
        forward += [(b, labels, d)]
        backward += [(d, b, labels), (b, d, labels)]
    return forward + backward


def floor_epoch_fn(models: list[ModelConfig], batch: int, k: int, steps: int) -> Callable[[], None]:
    """An epoch of the models' matmuls alone, each model at its own shapes."""
    shapes = [s for m in models for s in step_matmuls(m, batch, k)]
    pairs = [(torch.rand(r, i), torch.rand(i, c)) for r, i, c in shapes]
    outs = [torch.empty(r, c) for r, _, c in shapes]

    def epoch() -> None:
        for _ in range(steps):
            for (a, b), out in zip(pairs, outs, strict=True):
                torch.mm(a, b, out=out)

    return epoch


def peak_step_seconds(models: list[ModelConfig], batch: int, k: int, repeat: int = 30) -> float:
    """The fastest single step of the floor's matmuls: the machine's best matmul rate."""
    return best_of(floor_epoch_fn(models, batch, k, 1), repeat)


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


def timed(fn: Callable[[], object]) -> float:
    started = CLOCK()
    fn()
    return CLOCK() - started


def interleaved(rows: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Each row timed once per round, one after another; every round's times on stderr."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(rounds):
        for name, fn in rows.items():
            times[name].append(timed(fn))
        line = ", ".join(f"{name} {t[-1]:.2f}" for name, t in times.items())
        print(f"round {r + 1}: {line}", file=sys.stderr)
    return times


class Groups:
    """Training groups built once (the weights go on training from round to round, as they
    would from epoch to epoch), each timed for one epoch per call."""

    def __init__(self, mnist: MNIST, groups: list[list[RunConfig]], folder: Path) -> None:
        images = torch.from_numpy(mnist.x_train)
        self.trainers = []
        for i, cfgs in enumerate(groups):
            members = [
                TrainingRun(c, compact_data(mnist, c, "cpu", images), folder / f"{i}-{j}")
                for j, c in enumerate(cfgs)
            ]
            self.trainers.append(GroupTrainer(members))

    def epoch(self) -> None:
        for trainer in self.trainers:
            trainer.train_epoch()


def grid_groups(seeds: int, n: int) -> list[list[RunConfig]]:
    """One group per kind and seed, the latent sizes stacked: the study's work units."""
    return [[run_config(kind, z, s, n) for z in LATENTS] for s in range(seeds) for kind in KINDS]


class StudyGrid:
    """The study's own training of one seed's grid, from an empty folder each call."""

    def __init__(self, mnist: MNIST, n: int, folder: Path) -> None:
        self.mnist, self.n, self.folder, self.calls = mnist, n, folder, 0

    def train(self, epochs: int) -> None:
        cfg = StudyConfig(
            models=KINDS,
            latents=LATENTS,
            seeds=(0,),
            train=TrainConfig(epochs=epochs, device="cpu"),
            data=DataConfig(train_size=self.n),
        )
        self.calls += 1
        quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (closed with the process)
        train_grid(cfg, self.mnist, self.folder / f"study-{self.calls}", torch.device("cpu"), quiet)


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


def loss_epoch_fn(stock: bool, steps: int, k: int = 5, batch: int = 100) -> Callable[[], None]:
    """An epoch of the Bernoulli NLL's forward and backward passes on (k, B, 784) logits:
    vaelab's (`losses.bernoulli_nll`) or the stock `binary_cross_entropy_with_logits`."""
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(k, batch, 784, generator=gen) * 4).requires_grad_()
    x = torch.rand(batch, 784, generator=gen)

    def stock_nll(lg: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(lg, x.expand_as(lg), reduction="none").sum(-1)

    nll = stock_nll if stock else (lambda lg: bernoulli_nll(lg, x))

    def epoch() -> None:
        for _ in range(steps):
            logits.grad = None
            nll(logits).mean().backward()

    return epoch


def tanh_epoch_fn(stock: bool, steps: int, k: int = 5, batch: int = 100) -> Callable[[], None]:
    """An epoch of the grid's hidden-layer tanh passes (encoder and k decodes, 4 latents in a
    group): the stacked step's op-by-op tanh without the kernels, or `torch.tanh_`."""
    gen = torch.Generator().manual_seed(0)
    sources = [torch.randn(4, rows, 128, generator=gen) * 2 for rows in (batch, k * batch)]
    work = [torch.empty_like(a) for a in sources]

    def epoch() -> None:
        for _ in range(steps):
            for a, source in zip(work, sources, strict=True):
                a.copy_(source)
                if stock:
                    torch.tanh_(a)
                else:
                    with kernels.turned_off():
                        _tanh_(a)

    return epoch


def quick_study_rss(out: Path) -> float:
    """Peak resident memory (GB) of `vaelab study quick` run in a child process."""
    subprocess.run(
        [sys.executable, "-m", "vaelab", "study", "--preset", "quick", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def run_turned_off(fn: Callable[[], object]) -> None:
    with kernels.turned_off():
        fn()


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
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
    grid = [run_config(kind, z, 0, n).model for kind in KINDS for z in LATENTS]
    gflop = flops(vae.model, 100, 5, steps) / 1e9
    grid_gflop = sum(flops(m, 100, 5, steps) for m in grid) / 1e9
    peak = peak_step_seconds([vae.model], 100, 5)
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-") as tmp:
        folder = Path(tmp)
        one = Groups(mnist, [[vae]], folder / "vae")
        one_ops = Groups(mnist, [[vae]], folder / "vae-ops")
        nll_ops = loss_epoch_fn(stock=False, steps=steps)
        whole = Groups(mnist, grid_groups(1, n), folder / "grid")
        seeded = Groups(mnist, grid_groups(args.seeds, n), folder / "seeds")
        study = StudyGrid(mnist, n, folder / "study")
        rows: dict[str, Callable[[], object]] = {
            "floor": floor_epoch_fn([vae.model], 100, 5, steps),
            "vae": one.epoch,
            "vae_ops": lambda: run_turned_off(one_ops.epoch),
            "eager": eager_epoch_fn(mnist, vae),
            "grid_floor": floor_epoch_fn(grid, 100, 5, steps),
            "grid": whole.epoch,
            "grid_n": lambda: [whole.epoch() for _ in range(args.seeds)],
            "seeds": seeded.epoch,
            "study_1": lambda: study.train(1),
            "study_3": lambda: study.train(3),
            "grid_3": lambda: [whole.epoch() for _ in range(3)],
            "nll": lambda: run_turned_off(nll_ops),
            "nll_kernel": loss_epoch_fn(stock=False, steps=steps),
            "nll_stock": loss_epoch_fn(stock=True, steps=steps),
            "tanh": tanh_epoch_fn(stock=False, steps=steps),
            "tanh_stock": tanh_epoch_fn(stock=True, steps=steps),
        }
        times = interleaved(rows, args.rounds)
    best = {name: min(t) for name, t in times.items()}
    study_epoch = min((b - a) / 2 for a, b in zip(times["study_1"], times["study_3"], strict=True))
    grid_epoch = best["grid_3"] / 3
    f, g = best["floor"], best["grid_floor"]
    table = [
        ("matmul floor, VAE z=16", f, f"{gflop / f:.0f} GFLOP/s, {gflop:.1f} GFLOP"),
        ("vaelab, VAE z=16", best["vae"], f"{best['vae'] / f:.2f}x floor (target <= 1.5)"),
        ("  with torch ops", best["vae_ops"], f"{best['vae_ops'] / f:.2f}x floor"),
        (
            "careful eager loop",
            best["eager"],
            f"{best['eager'] / best['vae']:.2f}x vaelab, {best['eager'] / f:.2f}x floor",
        ),
        ("grid floor, 12 models", g, f"{grid_gflop / g:.0f} GFLOP/s, {grid_gflop:.1f} GFLOP"),
        ("vaelab grid, 12 models", best["grid"], f"{best['grid'] / g:.2f}x floor (target <= 1.5)"),
        (
            "the study's grid epoch",
            study_epoch,
            f"{study_epoch / grid_epoch:.2f}x the benchmark's grid epoch in a row "
            f"({grid_epoch:.3f} s; target <= 1.1)",
        ),
        (
            f"vaelab grid, {args.seeds} seeds",
            best["seeds"],
            f"{best['seeds'] / best['grid_n']:.2f}x {args.seeds} epochs of one seed (target <= 1)",
        ),
        (
            "Bernoulli NLL, fwd + bwd",
            best["nll"],
            f"{best['nll'] / best['nll_stock']:.2f}x the time of binary_cross_entropy_with_logits",
        ),
        (
            "the same, C kernel",
            best["nll_kernel"],
            f"{best['nll_kernel'] / best['nll_stock']:.2f}x the time of the stock loss",
        ),
        (
            "tanh as 2 sigmoid(2a) - 1",
            best["tanh"],
            f"{best['tanh_stock'] / best['tanh']:.2f}x as fast as torch.tanh_",
        ),
    ]
    scale = 60000 / n
    print(f"{'':<26}{'s/epoch':>9}{'at 60k':>9}  ratio")
    for name, seconds, note in table:
        print(f"{name:<26}{seconds:>9.3f}{seconds * scale:>9.2f}  {note}")
    print(
        f"best of {args.rounds} interleaved rounds; the fastest single step of the floor runs at "
        f"{gflop / (peak * steps):.0f} GFLOP/s ({peak * steps:.3f} s/epoch)"
    )
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{torch.backends.cpu.get_cpu_capability()}, step: {kernels.kernels_status()}, "
        f"{n} images, {args.clock} clock, load average {load_before} before, {loadavg()} after"
    )
    hours = 1000 * best["seeds"] * scale / 3600
    print(
        f"projected converged-1000 preset training (1000 epochs, {args.seeds} seeds): "
        f"{hours:.1f} h, assuming an epoch's cost linear in its images (measured on {n}, "
        f"scaled x{scale:.3g})"
    )
    if args.rss:
        with tempfile.TemporaryDirectory(prefix="vaelab-rss-") as tmp:
            print(f"quick study peak RSS: {quick_study_rss(Path(tmp) / 'study'):.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
