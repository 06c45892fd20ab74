"""The convolutional VAE's training time: vaelab beside a careful eager PyTorch loop.

All in one process, in interleaved rounds, each row its fastest round (see grid_speed.py):
- careful eager loop: the same network written the plain way (`nn.Sequential` convolutions,
  the k samples of z decoded in one batch, stock `binary_cross_entropy_with_logits`, stock
  Adam), independent of vaelab's code; its loss is first checked against vaelab's objective
  on one batch with the same weights and noise, and nothing is timed if they disagree;
- vaelab's module in the same loop: `models.conv.ConvVAE` and `losses.objective`, so the
  module's own cost shows apart from the trainer's;
- vaelab's group trainer (`GroupTrainer.train_epoch`): its row is timed once `KIND` is a
  registered model kind (`vaelab.models.kinds.names()`), and named as skipped before.
The ratios are what carry over between machines; see benchmarks/README.md on quiet machines.

    .venv/bin/python benchmarks/conv_speed.py --train-size 10000
    .venv/bin/python benchmarks/conv_speed.py --train-size 300 --rounds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.mnist import load_mnist
from vaelab.data.splits import to_float
from vaelab.data.tensors import compact_data
from vaelab.models import kinds
from vaelab.models.conv import ConvVAE
from vaelab.models.losses import objective
from vaelab.training.trainer import GroupTrainer, TrainingRun

KIND = "conv-vae"  # the convolutional VAE's name once it is a registered model kind
CHECK_TOLERANCE = 1e-4  # relative, the eager loop's loss vs vaelab's objective on one batch
EAGER_NAMES = {  # eager layer -> vaelab layer, for copying weights in the objective check
    "encoder.0": "enc_conv1",
    "encoder.2": "enc_conv2",
    "mu": "enc_mu",
    "ln_var": "enc_ln_var",
    "decoder.0": "dec_in",
    "decoder.3": "dec_deconv1",
    "decoder.5": "dec_deconv2",
}


class EagerConvVAE(nn.Module):
    """The conv VAE as a tutorial writes it: two stride-2 convolutions of 32 and 64 maps down
    to 7 x 7, linear heads, a linear layer back to 64 x 7 x 7 and two transposed convolutions."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        self.mu, self.ln_var = nn.Linear(64 * 7 * 7, latent), nn.Linear(64 * 7 * 7, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )  # fmt: skip

    def loss(self, x: Tensor, eps: Tensor, kl_weight: float) -> Tensor:
        """The article's objective: NLL averaged over the k draws of eps (k, B, Z), + C KL."""
        h = self.encoder(x.view(-1, 1, 28, 28))
        mu, ln_var = self.mu(h), self.ln_var(h)
        z = (mu + eps * torch.exp(0.5 * ln_var)).flatten(0, 1)  # (k B, Z): one decode
        logits = self.decoder(z).view(len(eps), len(x), -1)  # (k, B, 784)
        rec = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="sum")
        kl = -0.5 * torch.sum(1 + ln_var - mu.pow(2) - ln_var.exp())  # Kingma & Welling, app. B
        return rec / logits.shape[:2].numel() + kl_weight * kl / len(x)


def run_config(n: int, latent: int, device: str) -> RunConfig:
    return RunConfig(
        ModelConfig(kind=KIND, latent=latent),
        TrainConfig(device=device),
        DataConfig(train_size=n, test_size=100),
    )


def copy_weights(eager: EagerConvVAE, model: ConvVAE) -> None:
    source = model.state_dict()
    with torch.no_grad():
        for name, param in eager.named_parameters():
            layer, leaf = name.rsplit(".", 1)
            param.copy_(source[f"{EAGER_NAMES[layer]}.{leaf}"])


def check_objective(cfg: RunConfig, x: Tensor) -> float:
    """Relative difference of the two losses on one batch, same weights, same eps."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model, eager = ConvVAE(cfg.model).to(x.device).train(), EagerConvVAE(cfg.model.latent)
    copy_weights(eager.to(x.device), model)
    xb = x[: t.batch_size]
    gen = torch.Generator(x.device).manual_seed(t.seed)
    eps = torch.randn((t.n_samples, len(xb), cfg.model.latent), generator=gen, device=x.device)
    with torch.no_grad():  # sample_z draws the same eps from a generator seeded alike
        ours = objective(
            model, xb, kl_weight=t.kl_weight, n_samples=t.n_samples,
            generator=torch.Generator(x.device).manual_seed(t.seed),
        ).loss  # fmt: skip
        theirs = eager.loss(xb, eps, t.kl_weight)
    return abs(float(ours) - float(theirs)) / abs(float(theirs))


LossOf = Callable[[Tensor, torch.Generator], Tensor]  # (images, noise generator) -> loss


def epoch_fn(
    x: Tensor, t: TrainConfig, params: Iterable[Tensor], loss_of: LossOf, steps: int
) -> Callable[[], None]:
    """`steps` Adam steps of `loss_of`, in a fresh seeded order of the images each call."""
    opt = torch.optim.Adam(params, lr=t.lr)
    order_gen, noise_gen = torch.Generator().manual_seed(0), torch.Generator(x.device)
    noise_gen.manual_seed(1)

    def epoch() -> None:
        order = torch.randperm(len(x), generator=order_gen).to(x.device)
        for i in range(steps):
            loss = loss_of(
                x.index_select(0, order[i * t.batch_size : (i + 1) * t.batch_size]), noise_gen
            )
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


def eager_epoch_fn(cfg: RunConfig, x: Tensor, steps: int) -> Callable[[], None]:
    """The careful eager loop: the plain network, its k draws of eps made here."""
    t, latent = cfg.train, cfg.model.latent
    torch.manual_seed(t.seed)
    net = EagerConvVAE(latent).to(x.device)

    def loss_of(xb: Tensor, gen: torch.Generator) -> Tensor:
        eps = torch.randn((t.n_samples, len(xb), latent), generator=gen, device=x.device)
        return net.loss(xb, eps, t.kl_weight)

    return epoch_fn(x, t, net.parameters(), loss_of, steps)


def module_epoch_fn(cfg: RunConfig, x: Tensor, steps: int) -> Callable[[], None]:
    """The same loop over vaelab's module and objective."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model = ConvVAE(cfg.model).to(x.device).train()

    def loss_of(xb: Tensor, gen: torch.Generator) -> Tensor:
        return objective(
            model, xb, kl_weight=t.kl_weight, n_samples=t.n_samples, generator=gen
        ).loss

    return epoch_fn(x, t, model.parameters(), loss_of, steps)


def trainer_epoch_fn(cfg: RunConfig, folder: Path) -> Callable[[], object] | None:
    """One epoch of vaelab's group trainer on the kind, or None while `KIND` is not a
    registered model kind."""
    if KIND not in kinds.names():
        return None
    data = compact_data(load_mnist(), cfg, cfg.train.device)
    return GroupTrainer([TrainingRun(cfg, data, folder / KIND)]).train_epoch


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """`fn`, waiting for the GPU's queue at the end so the clock sees all its work."""

    def call() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return call


def interleaved(rows: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Each row timed once per round, one after another; each row's fastest round."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(rounds):
        for name, fn in rows.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
        line = ", ".join(f"{name} {t[-1]:.3f}" for name, t in times.items())
        print(f"round {r + 1}: {line}", file=sys.stderr)
    return {name: min(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10000, help="images of one epoch")
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = run_config(args.train_size, args.latent, args.device)
    x = torch.from_numpy(to_float(load_mnist().x_train[: args.train_size])).to(device)
    steps = -(-len(x) // cfg.train.batch_size)
    difference = check_objective(cfg, x)
    print(f"objective check: {'ok' if difference < CHECK_TOLERANCE else 'FAILED'} "
          f"(rel diff {difference:.1e})")  # fmt: skip
    if difference >= CHECK_TOLERANCE:
        return 1
    with tempfile.TemporaryDirectory(prefix="vaelab-conv-") as tmp:
        rows = {
            "eager": eager_epoch_fn(cfg, x, steps),
            "module": module_epoch_fn(cfg, x, steps),
        }
        trainer = trainer_epoch_fn(cfg, Path(tmp))
        if trainer is not None:
            rows["trainer"] = trainer
        best = interleaved({k: synced(fn, device) for k, fn in rows.items()}, args.rounds)
    scale = 60000 / len(x)
    print(f"{'':<34}{'s/epoch':>9}{'at 60k':>9}  ratio")
    table = [
        ("careful eager loop", "eager", "1.00x"),
        ("vaelab ConvVAE in the same loop", "module", "{:.2f}x the eager loop"),
        ("vaelab group trainer", "trainer", "{:.2f}x the eager loop"),
    ]
    for title, key, note in table:
        if key in best:
            seconds = best[key]
            ratio = note.format(seconds / best["eager"])
            print(f"{title:<34}{seconds:>9.3f}{seconds * scale:>9.2f}  {ratio}")
        else:
            print(f"{title:<34}  skipped: {KIND} is not among the model kinds {kinds.names()}")
    print(
        f"conv VAE z={args.latent}, k={cfg.train.n_samples}, batch {cfg.train.batch_size}; "
        f"best of {args.rounds} interleaved rounds of {steps} steps ({len(x)} images); "
        f"torch {torch.__version__}, {device}, threads {torch.get_num_threads()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
