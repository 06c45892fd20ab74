"""Seconds per training epoch: vaelab's Trainer beside a plain tutorial-style PyTorch loop.

The reference is what a typical tutorial writes: a DataLoader over a TensorDataset, a plain
nn.Module, the k samples of z decoded one at a time (as the article's Chainer code does), a
default Adam. Its loss is first checked against `vaelab.models.losses.objective`. Then the
article's own regime beside vaelab's defaults, in the same run: the AE on the notebook's mean
squared error and Chainer's Adam, each as a ratio to the same kind's epoch with the defaults
(`--skip-regime` leaves them out). See README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.mnist import MNIST_SIZES, load_mnist
from vaelab.data.tensors import TensorData
from vaelab.models import kinds
from vaelab.models.kinds import build_model
from vaelab.models.losses import objective
from vaelab.models.networks import AutoEncoder
from vaelab.training.run import Trainer

TARGET_VAE_SECONDS = 3.0  # the project's goal for one VAE epoch on the CPU
CHECK_TOLERANCE = 1e-4  # relative, reference loss vs vaelab's objective on one batch
VAELAB_NAMES = {  # reference layer -> vaelab layer, for copying weights in the objective check
    "fc1": "enc_hidden",
    "fc21": "enc_mu",
    "fc22": "enc_ln_var",
    "fc3": "dec_hidden",
    "fc4": "dec_out",
    "embed_enc": "enc_label",
    "embed_dec": "dec_label",
}


class ReferenceNet(nn.Module):
    """The article's AE / VAE / CVAE written the tutorial way, independent of vaelab's models."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.conditional, self.no_label = cfg.kind == "cvae", cfg.n_labels  # -1 -> padding row
        (hidden,) = cfg.hidden  # the article's one hidden layer
        width = hidden + (cfg.embed if self.conditional else 0)
        self.fc1 = nn.Linear(cfg.input_dim, hidden)
        self.fc21 = nn.Linear(width, cfg.latent)
        self.fc22 = nn.Linear(width, cfg.latent) if cfg.kind != "ae" else None
        self.fc3 = nn.Linear(cfg.latent, hidden)
        self.fc4 = nn.Linear(width, cfg.input_dim)
        if self.conditional:
            self.embed_enc = nn.Embedding(cfg.n_labels + 1, cfg.embed, padding_idx=cfg.n_labels)
            self.embed_dec = nn.Embedding(cfg.n_labels + 1, cfg.embed, padding_idx=cfg.n_labels)
        for layer in self.modules():  # Glorot weights (SPEC.md); padding rows back to zero
            if isinstance(layer, nn.Linear | nn.Embedding):
                nn.init.xavier_uniform_(layer.weight)
            if isinstance(layer, nn.Embedding):
                nn.init.zeros_(layer.weight[layer.padding_idx])

    def with_label(self, h: Tensor, y: Tensor, embed: nn.Embedding | None) -> Tensor:
        if embed is None:
            return h
        index = torch.where(y < 0, self.no_label, y)  # -1 ("no label") -> the zero row
        return torch.cat([h, torch.tanh(embed(index))], dim=1)  # (B, 256)

    def encode(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.with_label(torch.tanh(self.fc1(x)), y, getattr(self, "embed_enc", None))
        return self.fc21(h), (self.fc22(h) if self.fc22 is not None else None)

    def decode(self, z: Tensor, y: Tensor) -> Tensor:
        h = self.with_label(torch.tanh(self.fc3(z)), y, getattr(self, "embed_dec", None))
        return self.fc4(h)  # logits (B, 784)


def reference_loss(
    net: ReferenceNet, x: Tensor, y: Tensor, k: int, kl_weight: float, eps: Tensor | None = None
) -> Tensor:
    """The article's loss, per image: NLL averaged over k decodes + C * KL; batch mean."""
    mu, ln_var = net.encode(x, y)
    if ln_var is None:  # AE
        return F.binary_cross_entropy_with_logits(net.decode(mu, y), x, reduction="sum") / len(x)
    rec = torch.zeros(())
    for i in range(k):  # one decode per sample of z, like the article's Chainer loop
        noise = torch.randn_like(mu) if eps is None else eps[i]
        z = mu + noise * torch.exp(0.5 * ln_var)
        rec = rec + F.binary_cross_entropy_with_logits(net.decode(z, y), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + ln_var - mu.pow(2) - ln_var.exp())  # Kingma & Welling, app. B
    return (rec / k + kl_weight * kl) / len(x)


def copy_vaelab_weights(net: ReferenceNet, model: AutoEncoder) -> None:
    source = model.state_dict()
    with torch.no_grad():
        for name, param in net.named_parameters():
            layer, leaf = name.split(".")
            value = source[f"{VAELAB_NAMES[layer]}.{leaf}"]
            if layer == "fc4" and leaf == "weight" and "dec_label_out.weight" in source:
                value = torch.cat([value, source["dec_label_out.weight"]], dim=1)  # concat layer
            param[: len(value)].copy_(value)  # embeddings: 10 rows, the padding row stays 0


def check_objective(cfg: RunConfig, data: TensorData) -> float:
    """Relative difference of the two losses on one batch, same weights, same eps."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model, net = build_model(cfg.model), ReferenceNet(cfg.model)
    copy_vaelab_weights(net, model)
    x, y = data.x_train[: t.batch_size], data.y_train[: t.batch_size].clone()
    y[::2] = -1  # half the batch unlabelled, whatever the split: the check covers both paths
    eps_gen, same_gen = (torch.Generator().manual_seed(t.seed) for _ in range(2))
    eps = torch.randn((t.n_samples, len(x), cfg.model.latent), generator=eps_gen)  # (k, B, Z)
    with torch.no_grad():  # sample_z draws the same eps from same_gen
        ours = objective(
            model, x, y, kl_weight=t.kl_weight, n_samples=t.n_samples, generator=same_gen
        ).loss
        theirs = reference_loss(net, x, y, t.n_samples, t.kl_weight, eps)
    return abs(ours.item() - theirs.item()) / abs(theirs.item())


REGIME = (  # (row, kind, train settings): the article's regime beside the kind's defaults
    ("ae, mse loss", "ae", {"ae_loss": "mse"}),
    ("ae, chainer-adam", "ae", {"optimizer": "chainer-adam"}),
    ("ae, mse + chainer-adam", "ae", {"ae_loss": "mse", "optimizer": "chainer-adam"}),
    ("vae, chainer-adam", "vae", {"optimizer": "chainer-adam"}),
    ("cvae, chainer-adam", "cvae", {"optimizer": "chainer-adam"}),
)


def check_mse(cfg: RunConfig, data: TensorData) -> float:
    """Relative difference of vaelab's MSE objective and the notebook's, written with
    F.mse_loss on the reference network, on one batch with the same weights."""
    torch.manual_seed(cfg.train.seed)
    model, net = build_model(cfg.model), ReferenceNet(cfg.model)
    copy_vaelab_weights(net, model)
    x, y = data.x_train[: cfg.train.batch_size], data.y_train[: cfg.train.batch_size]
    with torch.no_grad():
        ours = objective(model, x, ae_loss="mse").loss
        theirs = F.mse_loss(torch.sigmoid(net.decode(net.encode(x, y)[0], y)), x) / len(x)
    return abs(ours.item() - theirs.item()) / abs(theirs.item())


def regime_rows(
    pairs: list[tuple[RunConfig, TensorData]], rows: list[dict], epochs: int
) -> list[dict[str, object]]:
    """vaelab's epoch with each of the article's settings, and its ratio to the same kind's
    epoch with the defaults timed above (above 1: slower)."""
    found = []
    for label, kind, changes in REGIME:
        base = [(cfg, data, row) for (cfg, data), row in zip(pairs, rows, strict=True)
                if cfg.model.kind == kind]  # fmt: skip
        if not base:
            continue
        cfg, data, row = base[0]
        changed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))
        with tempfile.TemporaryDirectory(prefix="vaelab-bench-") as tmp:
            seconds = median_epoch_seconds(Trainer(changed, data, tmp).train_epoch, epochs)
        ratio = seconds / float(row["vaelab_s_per_epoch"])
        found.append({"setting": label, "vaelab_s_per_epoch": seconds, "ratio_to_default": ratio})
    return found


def median_epoch_seconds(run_epoch: Callable[[], object], epochs: int) -> float:
    run_epoch()  # warm-up, untimed: allocator, thread pool, first-call dispatch
    return statistics.median(timeit.repeat(run_epoch, number=1, repeat=epochs))  # GC paused


def reference_epoch(
    net: ReferenceNet, opt: torch.optim.Optimizer, loader: DataLoader, t: TrainConfig
) -> None:
    net.train()
    for x, y in loader:
        loss = reference_loss(net, x, y, t.n_samples, t.kl_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the tutorial's running-loss print; a sync on a GPU, free on the CPU


def time_model(cfg: RunConfig, data: TensorData, epochs: int) -> dict[str, object]:
    t, n = cfg.train, len(data.x_train)
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-") as tmp:
        trainer = Trainer(cfg, data, tmp)
        ours = median_epoch_seconds(trainer.train_epoch, epochs)
    torch.manual_seed(t.seed)
    net = ReferenceNet(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=t.lr)  # defaults: no fused / foreach flags
    dataset = TensorDataset(data.x_train, data.y_train)
    order = torch.Generator().manual_seed(t.seed)
    loader = DataLoader(dataset, batch_size=t.batch_size, shuffle=True, generator=order)
    theirs = median_epoch_seconds(lambda: reference_epoch(net, opt, loader, t), epochs)
    gflop = vae_epoch_flops(n, cfg.model, t.n_samples) / 1e9 if cfg.model.kind == "vae" else None
    return {
        "model": cfg.model.kind,
        "vaelab_s_per_epoch": ours,
        "reference_s_per_epoch": theirs,
        "speedup": theirs / ours,
        "vaelab_images_per_s": n / ours,
        "images": n,
        "vae_gflop_per_epoch": gflop,
    }


def vae_epoch_flops(n_images: int, m: ModelConfig, k: int) -> float:
    """Matmul FLOPs of one VAE epoch: 2 per multiply-add, backward twice the forward (weight
    and input grads) except the first layer's input grad (the image needs none); no elementwise."""
    (h,) = m.hidden  # the article's one hidden layer
    first = m.input_dim * h
    heads = 2 * h * m.latent  # mu and ln_var
    decode = k * (m.latent * h + h * m.input_dim)  # k decodes per image
    return 2.0 * n_images * (3 * (first + heads + decode) - first)


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


def print_report(facts: dict[str, object], rows: list[dict], regime: list[dict]) -> None:
    print("model   vaelab s/epoch  reference s/epoch  speed-up  images/s")
    for r in rows:
        seconds = f"{r['vaelab_s_per_epoch']:>16.2f}{r['reference_s_per_epoch']:>19.2f}"
        print(f"{r['model']:<6}{seconds}{r['speedup']:>9.1f}x{r['vaelab_images_per_s']:>10,.0f}")
    print(", ".join(f"{key}: {value}" for key, value in facts.items()))
    if regime:
        print("the article's regime beside the defaults (vaelab):")
        print("setting                  s/epoch  ratio to the kind's default epoch")
        for r in regime:
            print(
                f"{r['setting']:<24}{r['vaelab_s_per_epoch']:>8.2f}{r['ratio_to_default']:>9.2f}x"
            )
    print(f"target: VAE <= {TARGET_VAE_SECONDS:.1f} s/epoch on CPU")
    for r in rows:
        if (gflop := r["vae_gflop_per_epoch"]) is not None:
            target = gflop * MNIST_SIZES[0] / r["images"] / TARGET_VAE_SECONDS  # 60,000 images
            print(
                f"arithmetic (VAE matmuls, forward + backward): {gflop:.1f} GFLOP/epoch; "
                f"vaelab {gflop / r['vaelab_s_per_epoch']:.1f} GFLOP/s, "
                f"reference {gflop / r['reference_s_per_epoch']:.1f} GFLOP/s; "
                f"the target needs {target:.1f} GFLOP/s"
            )
            if r["images"] != MNIST_SIZES[0]:
                print(
                    f"(measured on {r['images']} images; the target is scaled to "
                    f"{MNIST_SIZES[0]}, assuming an epoch's cost linear in its images)"
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ae,vae,cvae", help="comma-separated: ae,vae,cvae")
    parser.add_argument("--z", type=int, default=16, help="latent size")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (median reported)")
    parser.add_argument("--train-size", type=int, default=60000, help="training images")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--skip-regime", action="store_true", help="leave out the MSE AE and Chainer's Adam rows"
    )
    args = parser.parse_args(argv)
    args.models = [k.strip() for k in args.models.split(",") if k.strip()]
    if not args.models or not set(args.models) <= set(kinds.names()):
        parser.error(f"--models {','.join(args.models)}: choose from {', '.join(kinds.names())}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    mnist = load_mnist()
    # vaelab's defaults are the article's: batch 100, Adam 1e-3, C = 0.1, k = 5, 30,000 labels
    train, subset = TrainConfig(device="cpu"), DataConfig(train_size=args.train_size)
    models = [ModelConfig(kind=kind, latent=args.z) for kind in args.models]
    configs = [RunConfig(model, train, subset).validate() for model in models]
    datasets = [TensorData.from_mnist(mnist, cfg) for cfg in configs]  # shared by both loops
    pairs = list(zip(configs, datasets, strict=True))
    diffs = {cfg.model.kind: check_objective(cfg, data) for cfg, data in pairs}
    listed = ", ".join(f"{kind} {diff:.1e}" for kind, diff in diffs.items())
    if max(diffs.values()) > CHECK_TOLERANCE:
        print(f"objective check: FAILED (rel diff {listed}; tolerance {CHECK_TOLERANCE})")
        return 1
    print(f"objective check: ok (rel diff {listed})")
    mse = [check_mse(cfg, data) for cfg, data in pairs if cfg.model.kind == "ae"]
    if mse and mse[0] > CHECK_TOLERANCE:
        print(f"MSE objective check: FAILED (rel diff {mse[0]:.1e})")
        return 1
    rows = [time_model(cfg, data, args.epochs) for cfg, data in pairs]
    regime = [] if args.skip_regime else regime_rows(pairs, rows, args.epochs)
    facts = machine_facts()
    print_report(facts, rows, regime)
    if args.json is not None:
        result = {"machine": facts, "args": vars(args), "rows": rows, "regime": regime}
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
