"""Seconds per training epoch: vaelab's Trainer beside a plain tutorial-style PyTorch loop.

The reference is what a typical tutorial writes: DataLoader over a TensorDataset, a plain
nn.Module, the k samples of z decoded one at a time (as the article's Chainer code does), a
default Adam. Its loss is first checked against `vaelab.losses.objective`. See README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from vaelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data import load_mnist
from vaelab.losses import objective
from vaelab.models import MODEL_KINDS, AutoEncoder, build_model
from vaelab.train import TensorData, Trainer

TARGET_VAE_SECONDS = 3.0  # the project's goal for one VAE epoch on the CPU
CHECK_TOLERANCE = 1e-4  # relative, reference loss vs vaelab's objective on one batch
SEED = 0
# reference layer name -> vaelab layer name, for copying weights in the objective check
VAELAB_NAMES = {
    "fc1": "enc_hidden",
    "fc21": "enc_mu",
    "fc22": "enc_ln_var",
    "fc3": "dec_hidden",
    "fc4": "dec_out",
    "embed_enc": "enc_label",
    "embed_dec": "dec_label",
}


class ReferenceNet(nn.Module):
    """The article's AE / VAE / CVAE written the tutorial way, independent of vaelab.models."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        kind = self.kind = cfg.kind
        self.no_label = cfg.n_labels  # label -1 -> this padding row, all zeros
        width = cfg.hidden + (cfg.embed if kind == "cvae" else 0)
        self.fc1 = nn.Linear(cfg.input_dim, cfg.hidden)
        self.fc21 = nn.Linear(width, cfg.latent)
        self.fc22 = nn.Linear(width, cfg.latent) if kind != "ae" else None
        self.fc3 = nn.Linear(cfg.latent, cfg.hidden)
        self.fc4 = nn.Linear(width, cfg.input_dim)
        if kind == "cvae":
            self.embed_enc = nn.Embedding(cfg.n_labels + 1, cfg.embed, padding_idx=cfg.n_labels)
            self.embed_dec = nn.Embedding(cfg.n_labels + 1, cfg.embed, padding_idx=cfg.n_labels)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.xavier_uniform_(module.weight)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding):
                module.weight.data[module.padding_idx] = 0.0

    def label_features(self, y: Tensor, embed: nn.Embedding) -> Tensor:
        index = torch.where(y < 0, self.no_label, y)  # -1 ("no label") -> the zero row
        return torch.tanh(embed(index))  # (B, 128)

    def encode(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        h = torch.tanh(self.fc1(x))
        if self.kind == "cvae":
            h = torch.cat([h, self.label_features(y, self.embed_enc)], dim=1)  # (B, 256)
        return self.fc21(h), (self.fc22(h) if self.fc22 is not None else None)

    def decode(self, z: Tensor, y: Tensor) -> Tensor:
        h = torch.tanh(self.fc3(z))
        if self.kind == "cvae":
            h = torch.cat([h, self.label_features(y, self.embed_dec)], dim=1)  # (B, 256)
        return self.fc4(h)  # logits (B, 784)


def reference_loss(
    net: ReferenceNet, x: Tensor, y: Tensor, k: int, kl_weight: float, eps: Tensor | None = None
) -> Tensor:
    """The article's loss, per image: NLL averaged over k decodes + C * KL; batch mean."""
    batch = x.shape[0]
    mu, ln_var = net.encode(x, y)
    if ln_var is None:  # AE
        return F.binary_cross_entropy_with_logits(net.decode(mu, y), x, reduction="sum") / batch
    rec = torch.zeros(())
    for i in range(k):  # one decode per sample of z, like the article's Chainer loop
        noise = torch.randn_like(mu) if eps is None else eps[i]
        z = mu + noise * torch.exp(0.5 * ln_var)
        rec = rec + F.binary_cross_entropy_with_logits(net.decode(z, y), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + ln_var - mu.pow(2) - ln_var.exp())  # Kingma & Welling, app. B
    return (rec / k + kl_weight * kl) / batch


def copy_vaelab_weights(net: ReferenceNet, model: AutoEncoder) -> None:
    source = model.state_dict()
    with torch.no_grad():
        for name, param in net.named_parameters():
            layer, leaf = name.split(".")
            value = source[f"{VAELAB_NAMES[layer]}.{leaf}"]
            param[: len(value)].copy_(value)  # embeddings: 10 rows, the padding row stays 0


def check_objective(cfg: RunConfig, data: TensorData) -> float:
    """Relative difference of the two losses on one batch, same weights, same eps."""
    t = cfg.train
    torch.manual_seed(SEED)
    model, net = build_model(cfg.model), ReferenceNet(cfg.model)
    copy_vaelab_weights(net, model)
    x, y = data.x_train[: t.batch_size], data.y_train[: t.batch_size]
    shape = (t.n_samples, t.batch_size, cfg.model.latent)
    eps = torch.randn(shape, generator=torch.Generator().manual_seed(SEED))  # (k, B, Z)
    same_eps = torch.Generator().manual_seed(SEED)  # sample_z draws the same eps from it
    y_ours = y if model.uses_labels else None
    with torch.no_grad():
        ours = objective(
            model, x, y_ours, kl_weight=t.kl_weight, n_samples=t.n_samples, generator=same_eps
        ).loss
        theirs = reference_loss(net, x, y, t.n_samples, t.kl_weight, eps)
    return abs(ours.item() - theirs.item()) / abs(theirs.item())


def median_epoch_seconds(run_epoch: Callable[[], object], epochs: int) -> float:
    run_epoch()  # warm-up, untimed: allocator, thread pool, first-call dispatch
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_epoch()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def reference_epoch(
    net: ReferenceNet, optimizer: torch.optim.Optimizer, loader: DataLoader, t: TrainConfig
) -> float:
    net.train()
    total = 0.0
    for x, y in loader:
        loss = reference_loss(net, x, y, t.n_samples, t.kl_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)


def time_model(cfg: RunConfig, data: TensorData, epochs: int) -> dict[str, object]:
    t = cfg.train
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-") as tmp:
        trainer = Trainer(cfg, data, tmp)
        ours = median_epoch_seconds(trainer.train_epoch, epochs)
    torch.manual_seed(SEED)
    net = ReferenceNet(cfg.model)
    optimizer = torch.optim.Adam(net.parameters(), lr=t.lr)
    order = torch.Generator().manual_seed(SEED)  # the shuffling
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train), t.batch_size, True, generator=order
    )
    theirs = median_epoch_seconds(lambda: reference_epoch(net, optimizer, loader, t), epochs)
    n = len(data.x_train)
    vae = cfg.model.kind == "vae"
    gflop = vae_epoch_flops(n, cfg.model, t.n_samples) / 1e9 if vae else None
    return {
        "model": cfg.model.kind,
        "vaelab_s_per_epoch": ours,
        "reference_s_per_epoch": theirs,
        "speedup": theirs / ours,
        "vaelab_images_per_s": n / ours,
        "vae_gflop_per_epoch": gflop,
    }


def vae_epoch_flops(n_images: int, m: ModelConfig, k: int) -> float:
    """Matmul FLOPs of one VAE epoch, forward + backward (2 FLOPs per multiply-add).

    Backward costs two forward matmuls per layer (grad of weights, grad of inputs), except the
    first layer, whose input (the image) needs no gradient. Elementwise ops are not counted.
    """
    first = m.input_dim * m.hidden
    heads = 2 * m.hidden * m.latent  # mu and ln_var
    decode = k * (m.latent * m.hidden + m.hidden * m.input_dim)  # k decodes per image
    forward = first + heads + decode
    return 2.0 * n_images * (3 * forward - first)


def machine_facts() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": names[0] if names else platform.processor() or "unknown",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def print_report(console: Console, facts: dict, rows: list[dict]) -> None:
    table = Table(title="seconds per training epoch (median of timed epochs, after a warm-up)")
    for header in ("model", "vaelab s/epoch", "reference s/epoch", "speed-up", "images/s"):
        table.add_column(header, justify="left" if header == "model" else "right")
    for r in rows:
        seconds = (f"{r[key]:.2f}" for key in ("vaelab_s_per_epoch", "reference_s_per_epoch"))
        speed = (f"{r['speedup']:.1f}x", f"{r['vaelab_images_per_s']:,.0f}")
        table.add_row(r["model"], *seconds, *speed)
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in facts.items()))
    console.print(f"target: VAE <= {TARGET_VAE_SECONDS:.1f} s/epoch on CPU")
    for r in rows:
        if (gflop := r["vae_gflop_per_epoch"]) is not None:
            console.print(
                f"arithmetic (VAE matmuls, forward + backward): {gflop:.1f} GFLOP/epoch; "
                f"vaelab {gflop / r['vaelab_s_per_epoch']:.1f} GFLOP/s, "
                f"reference {gflop / r['reference_s_per_epoch']:.1f} GFLOP/s; "
                f"the target needs {gflop / TARGET_VAE_SECONDS:.1f} GFLOP/s"
            )


def run_config(kind: str, latent: int, train_size: int) -> RunConfig:
    """The article's settings (batch 100, Adam 1e-3, C = 0.1, k = 5) for one model, on the CPU."""
    model = ModelConfig(kind=kind, latent=latent)
    data = DataConfig(train_size=train_size)  # n_labelled 30,000 for the CVAE, as vaelab does
    return RunConfig(model=model, train=TrainConfig(device="cpu"), data=data).validate()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ae,vae,cvae", help="comma-separated: ae,vae,cvae")
    parser.add_argument("--z", type=int, default=16, help="latent size")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (median reported)")
    parser.add_argument("--train-size", type=int, default=60000, help="training images")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.models = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = sorted(set(args.models) - set(MODEL_KINDS))
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODEL_KINDS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    mnist = load_mnist()
    configs = [run_config(kind, args.z, args.train_size) for kind in args.models]
    datasets = [TensorData.from_mnist(mnist, cfg) for cfg in configs]  # built once, used twice
    console = Console(highlight=False)
    diffs = {c.model.kind: check_objective(c, d) for c, d in zip(configs, datasets, strict=True)}
    listed = ", ".join(f"{kind} {d:.1e}" for kind, d in diffs.items())
    if max(diffs.values()) > CHECK_TOLERANCE:
        console.print(f"objective check: FAILED (rel diff {listed}; tolerance {CHECK_TOLERANCE})")
        return 1
    console.print(f"objective check: ok (rel diff {listed})")
    rows = [time_model(c, d, args.epochs) for c, d in zip(configs, datasets, strict=True)]
    facts = machine_facts()
    print_report(console, facts, rows)
    if args.json is not None:
        result = {"machine": facts, "args": vars(args), "rows": rows}
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
