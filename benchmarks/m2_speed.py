"""M2's epoch beside the CVAE's and beside a careful eager loop of the same objective.

All in one process, in interleaved rounds, each row its fastest round (see grid_speed.py):
- vaelab CVAE z=50: the CVAE of the same architecture through the group trainer (the fused
  C kernels for the article's architecture, autograd on its own module otherwise);
- vaelab M2 z=50: M2 through the same trainer, gradients by autograd on each member's own
  module, its parameters views of the group's flat buffer (`training.autograd_step`);
- eager M2: a plain loop written as a careful PyTorch user would: `build_model("m2")` with
  float images indexed in memory, `torch.optim.Adam(fused=True)` where this torch has it
  (else foreach), gradients set to None between steps, the same `losses.m2_objective` with
  the same number of labelled images per step, no flat buffer: what the trainer's bookkeeping
  costs.
M2 scores every image under all ten labels, so about ten times the CVAE's decoder work per
step is expected of it.

    .venv/bin/python benchmarks/m2_speed.py --train-size 10000              # Kingma et al.'s sizes
    .venv/bin/python benchmarks/m2_speed.py --train-size 10000 --article    # the article's
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

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
        rows: dict[str, Callable[[], object]] = {
            "cvae": trainers["cvae"].train_epoch,
            "m2": trainers["m2"].train_epoch,
            "eager": eager_epoch_fn(m2_data, m2_cfg),
        }
        times = interleaved(rows, args.rounds)
    best = {name: min(t) for name, t in times.items()}
    scale = 60000 / n
    which = "the article's" if args.article else "Kingma et al.'s"
    print(f"{which} architecture: {m2_cfg.model.hidden} {m2_cfg.model.activation}, "
          f"label at {m2_cfg.model.label_at}; CVAE step: "
          f"{'fused' if trainers['cvae'].fused else 'autograd'}")  # fmt: skip
    print(f"{'':<28}{'s/epoch':>9}{'at 60k':>9}  ratio")
    table = [
        ("vaelab CVAE z=50, k=1", best["cvae"], "1.00x"),
        ("vaelab M2 z=50, k=1", best["m2"], f"{best['m2'] / best['cvae']:.2f}x the CVAE"),
        ("eager M2 loop", best["eager"], f"{best['eager'] / best['m2']:.2f}x vaelab's M2"),
    ]
    for name, seconds, note in table:
        print(f"{name:<28}{seconds:>9.3f}{seconds * scale:>9.2f}  {note}")
    print(
        f"best of {args.rounds} interleaved rounds; torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, step: {kernels.kernels_status()}, {n} images, "
        f"{args.labelled} labelled; the eager loop's Adam: {adam_kind()}; "
        f"'at 60k' scales by 60,000 / {n}, assuming an epoch's cost linear in its images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
