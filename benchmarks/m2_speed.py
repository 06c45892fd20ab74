"""M2's epoch beside the CVAE's and beside a careful eager loop of the same objective.

All in one process, in interleaved rounds, each row its fastest round (see grid_speed.py):
- vaelab CVAE z=50: the CVAE of the same architecture through the group trainer (the fused
  C kernels for the article's architecture, autograd on its own module otherwise);
- vaelab M2 z=50: M2 through the same trainer, gradients by autograd on each member's own
  module, its parameters views of the group's flat buffer (`training.autograd_step`), the
  Bernoulli loss and softplus through the C kernels; and the same with torch ops
  (`kernels.turned_off`): what the kernels buy;
- eager M2: a plain loop written as a careful PyTorch user would: `build_model("m2")` with
  float images indexed in memory, `torch.optim.Adam(fused=True)` where this torch has it
  (else foreach), gradients set to None between steps, the same `losses.m2_objective` with
  the same number of labelled images per step, no flat buffer: what the trainer's bookkeeping
  costs;
- plain M2 from the paper (Kingma et al.'s sizes only): the same objective written from the
  paper in stock PyTorch, as a user following Pyro's `ss_vae_M2.py` would: its own `nn.Linear`
  layers, the one-hot label concatenated to each network's input, every label scored by
  broadcasting the batch ten times, `F.binary_cross_entropy_with_logits`; fused Adam as above.
  Before timing, its loss on vaelab's initial weights and noise is checked equal to vaelab's:
  what vaelab's own objective (the image's part of a first layer computed once for all ten
  labels, one exp per pixel for the loss and its gradient) buys over the stock one.
M2 scores every image under all ten labels, so about ten times the CVAE's decoder work per
step is expected of it.

    .venv/bin/python benchmarks/m2_speed.py --train-size 10000              # Kingma et al.'s sizes
    .venv/bin/python benchmarks/m2_speed.py --train-size 10000 --article    # the article's
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))
from grid_speed import interleaved  # noqa: E402
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.mnist import load_mnist
from vaelab.data.tensors import TensorData, compact_data
from vaelab.models import kernels
from vaelab.models.kinds import build_model
from vaelab.models.losses import m2_objective
from vaelab.training.trainer import GroupTrainer, TrainingRun

PAPER = {"hidden": (500,), "activation": "softplus", "label_at": "input"}


def config(kind: str, n: int, labelled: int, article: bool) -> RunConfig:
    return RunConfig(
        ModelConfig(kind=kind, latent=50, **({} if article else PAPER)),
        TrainConfig(kl_weight=1.0, n_samples=1, device="cpu"),
        DataConfig(train_size=n, test_size=100, n_labelled=labelled),
    )


def adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """torch's fused Adam where this torch runs it on a CPU, else its foreach one."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def adam_kind() -> str:
    opt = adam([torch.nn.Parameter(torch.ones(1))], 1.0)
    return "fused" if opt.defaults.get("fused") else "foreach"


def eager_epoch_fn(data: TensorData, cfg: RunConfig) -> Callable[[], None]:
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    opt = adam(list(model.parameters()), cfg.train.lr)
    order_gen, noise = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    x, y, b = data.x_train, data.y_train, cfg.train.batch_size
    known = (y >= 0).nonzero().squeeze(1)
    b_l, weight = cfg.train.labelled_batch, cfg.train.classification_weight

    def epoch() -> None:
        order = torch.randperm(len(x), generator=order_gen)
        for start in range(0, len(x), b):
            i = order[start : start + b]
            j = known[torch.randint(len(known), (b_l,), generator=order_gen)]
            loss = m2_objective(
                model, x[i], y[i], kl_weight=1.0, n_samples=1, ce_weight=weight,
                generator=noise, labelled=(x[j], y[j]),
            ).loss  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


class PaperM2(nn.Module):
    """M2 of Kingma et al.'s sizes written from the paper with stock layers: q(z|x,y) and
    p(x|y,z) each one hidden layer of softplus units reading [input, one-hot y], and q(y|x)."""

    def __init__(self, latent: int = 50, hidden: int = 500, pixels: int = 784) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(pixels + 10, hidden), nn.Linear(latent + 10, hidden)
        self.mu, self.ln_var = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.out = nn.Linear(hidden, pixels)
        self.cls = nn.Sequential(nn.Linear(pixels, hidden), nn.Softplus(), nn.Linear(hidden, 10))

    def copy_from(self, m: nn.Module) -> None:
        """vaelab's M2 weights, its label columns joined to the first layers' weights."""
        w = dict(m.named_parameters())
        with torch.no_grad():
            self.enc.weight.copy_(torch.cat([w["enc_hidden.weight"], w["enc_label_in.weight"]], 1))
            self.dec.weight.copy_(torch.cat([w["dec_hidden.weight"], w["dec_label_in.weight"]], 1))
            pairs = [(self.enc, "enc_hidden"), (self.dec, "dec_hidden"), (self.mu, "enc_mu"),
                     (self.ln_var, "enc_ln_var"), (self.out, "dec_out"),
                     (self.cls[0], "cls_hidden"), (self.cls[2], "cls_out")]  # fmt: skip
            for layer, name in pairs:
                layer.bias.copy_(w[f"{name}.bias"])
                if layer not in (self.enc, self.dec):
                    layer.weight.copy_(w[f"{name}.weight"])

    def loss(
        self, x: Tensor, y: Tensor, labelled: tuple[Tensor, Tensor], weight: float,
        generator: torch.Generator,
    ) -> Tensor:  # fmt: skip
        """The mean bound per image (C = 1, one draw of z) + weight * mean -log q(y|x) of the
        labelled images: an unlabelled image (y = -1) scored under every label by q(y|x)."""
        b, ten = len(x), torch.eye(10, dtype=x.dtype).unsqueeze(1).expand(10, len(x), 10)
        xs = x.expand(10, *x.shape)  # (10, B, 784): every image under every label
        h = F.softplus(self.enc(torch.cat([xs, ten], -1)))
        mu, ln_var = self.mu(h), self.ln_var(h)
        eps = torch.randn((1, *mu.shape), generator=generator)[0]
        z = mu + eps * torch.exp(0.5 * ln_var)
        logits = self.out(F.softplus(self.dec(torch.cat([z, ten], -1))))
        nll = F.binary_cross_entropy_with_logits(logits, xs, reduction="none").sum(-1).T
        kl = 0.5 * (mu.pow(2) + ln_var.exp() - ln_var - 1).sum(-1).T  # (B, 10)
        log_q = F.log_softmax(self.cls(x), -1)
        q, known = log_q.exp(), y >= 0
        scored = torch.where(known.unsqueeze(1), F.one_hot(y.clamp(min=0), 10).to(x.dtype), q)
        entropy = torch.where(known, 0.0, -(q * log_q).sum(1))
        ce = F.cross_entropy(self.cls(labelled[0]), labelled[1])
        return ((scored * (nll + kl)).sum(1) - entropy).sum() / b + weight * ce


def paper_epoch_fn(data: TensorData, cfg: RunConfig) -> Callable[[], None]:
    """An epoch of `PaperM2` in a plain loop, after checking its loss equals vaelab's."""
    torch.manual_seed(0)
    reference = build_model(cfg.model).train()
    model = PaperM2(cfg.model.latent, cfg.model.hidden[0])
    model.copy_from(reference)
    x, y, b = data.x_train, data.y_train, cfg.train.batch_size
    known = (y >= 0).nonzero().squeeze(1)
    b_l, weight = cfg.train.labelled_batch, cfg.train.classification_weight
    i, j = torch.arange(b), known[:b_l]
    theirs = m2_objective(
        reference, x[i], y[i], kl_weight=1.0, n_samples=1, ce_weight=weight,
        generator=torch.Generator().manual_seed(5), labelled=(x[j], y[j]),
    ).loss  # fmt: skip
    mine = model.loss(x[i], y[i], (x[j], y[j]), weight, torch.Generator().manual_seed(5))
    if not torch.allclose(mine, theirs, rtol=1e-5, atol=0.0):
        raise SystemExit(f"the plain M2's loss {mine.item()} is not vaelab's {theirs.item()}")
    opt = adam(list(model.parameters()), cfg.train.lr)
    order_gen, noise = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

    def epoch() -> None:
        order = torch.randperm(len(x), generator=order_gen)
        for start in range(0, len(x), b):
            i = order[start : start + b]
            j = known[torch.randint(len(known), (b_l,), generator=order_gen)]
            loss = model.loss(x[i], y[i], (x[j], y[j]), weight, noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--labelled", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--article", action="store_true", help="the article's architecture")
    args = parser.parse_args(argv)
    mnist = load_mnist()
    n = args.train_size
    with tempfile.TemporaryDirectory(prefix="vaelab-m2-") as tmp:
        trainers = {}
        for kind in ("cvae", "m2"):
            cfg = config(kind, n, args.labelled, args.article)
            run = TrainingRun(cfg, compact_data(mnist, cfg), Path(tmp) / kind)
            trainers[kind] = GroupTrainer([run])
        m2_cfg = config("m2", n, args.labelled, args.article)
        m2_data = TensorData.from_mnist(mnist, m2_cfg, "cpu")
        m2_torch = GroupTrainer([TrainingRun(m2_cfg, compact_data(mnist, m2_cfg), Path(tmp) / "t")])

        def torch_ops_epoch() -> object:
            with kernels.turned_off():
                return m2_torch.train_epoch()

        rows: dict[str, Callable[[], object]] = {
            "cvae": trainers["cvae"].train_epoch,
            "m2": trainers["m2"].train_epoch,
            "m2, torch ops": torch_ops_epoch,
            "eager": eager_epoch_fn(m2_data, m2_cfg),
        }
        if not args.article:
            rows["paper"] = paper_epoch_fn(m2_data, m2_cfg)
        times = interleaved(rows, args.rounds)
    best = {name: min(t) for name, t in times.items()}
    scale = 60000 / n
    which = "the article's" if args.article else "Kingma et al.'s"
    print(f"{which} architecture: {m2_cfg.model.hidden} {m2_cfg.model.activation}, "
          f"label at {m2_cfg.model.label_at}; CVAE step: "
          f"{'fused' if trainers['cvae'].fused else 'autograd'}")  # fmt: skip
    print(f"{'':<32}{'s/epoch':>9}{'at 60k':>9}  ratio  (round by round: median, range)")
    names = {
        "cvae": "vaelab CVAE z=50, k=1",
        "m2": "vaelab M2 z=50, k=1",
        "m2, torch ops": "the same, torch ops",
        "eager": "eager M2 loop",
        "paper": "plain M2 from the paper",
    }
    for row, seconds in best.items():
        if row == "cvae":
            note = "1.00x"
        elif row == "m2":
            note = f"{seconds / best['cvae']:.2f}x the CVAE"
        else:
            ratios = sorted(a / b for a, b in zip(times[row], times["m2"], strict=True))
            note = (f"{seconds / best['m2']:.2f}x vaelab's M2  ({statistics.median(ratios):.2f}, "
                    f"{ratios[0]:.2f} to {ratios[-1]:.2f})")  # fmt: skip
        print(f"{names[row]:<32}{seconds:>9.3f}{seconds * scale:>9.2f}  {note}")
    print(
        f"best of {args.rounds} interleaved rounds; torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, step: {kernels.kernels_status()}, {n} images, "
        f"{args.labelled} labelled; the eager loop's Adam: {adam_kind()}; "
        f"'at 60k' scales by 60,000 / {n}, assuming an epoch's cost linear in its images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
