"""Training one model: its data as tensors on the device, its run folder, its metrics log.

`Trainer` and `train` train one run as a training group of one: the loop itself, its
checkpoints, resume, milestones and safety live in `vaelab.group`, the stacked arithmetic in
`vaelab.stacked`. Randomness comes from two generators seeded by the config (batch order on
the CPU, the noise of z on the device) whose states are saved in every checkpoint, so a run
that is killed and resumed ends with the same weights, bit for bit on the CPU, as one that
was not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from vaelab import checkpoint
from vaelab.config import RunConfig, to_dict
from vaelab.data import MNIST, semi_supervised_labels, test_subset, to_float
from vaelab.errors import VaelabError
from vaelab.models import AutoEncoder

METRICS_FILE = "metrics.jsonl"
EVAL_SEED_OFFSET = 1_000_003  # the test-loss noise never touches the training generators


@dataclass(frozen=True)
class TensorData:
    """MNIST as float tensors on one device, split and labelled as a run's DataConfig says."""

    x_train: Tensor  # (N, 784) float32 in [0, 1]
    y_train: Tensor  # (N,) int64; -1 where the label is withheld
    x_test: Tensor  # (M, 784)
    y_test: Tensor  # (M,) int64, always the true labels

    @classmethod
    def from_mnist(
        cls, mnist: MNIST, cfg: RunConfig, device: torch.device | str = "cpu"
    ) -> TensorData:
        d = cfg.data
        n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
        y_train = mnist.y_train[:n].astype(np.int64)
        if cfg.model.kind == "cvae":
            y_train = semi_supervised_labels(y_train, min(d.n_labelled, n), d.seed)
        test = test_subset(mnist.y_test, d.test_size, d.seed)
        return cls(
            x_train=torch.from_numpy(to_float(mnist.x_train[:n])).to(device),
            y_train=torch.from_numpy(y_train).to(device),
            x_test=torch.from_numpy(to_float(mnist.x_test[test])).to(device),
            y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)).to(device),
        )


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI and the study render it."""

    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaelabError("device cuda was asked for, but torch sees no CUDA GPU")
    return torch.device(name)


def is_finished(run_dir: Path, cfg: RunConfig) -> bool:
    """True if `run_dir` holds a finished model trained with exactly `cfg`'s settings."""
    path = Path(run_dir) / "model.json"
    if not path.exists():
        return False
    try:
        saved = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError):
        return False
    return identity(saved) == identity(to_dict(cfg))


# Settings that change no number of a run: where and how often it saves, where it runs.
_BOOKKEEPING = ("checkpoint_every", "eval_every", "device")
# Settings a model kind never reads, so changing them leaves its numbers alone.
_UNUSED = {
    "ae": {
        "model": ("embed", "n_labels"),
        "train": ("kl_weight", "n_samples"),
        "data": ("n_labelled",),
    },
    "vae": {"model": ("embed", "n_labels"), "data": ("n_labelled",)},
    "cvae": {},
}


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings that change a run's numbers: all but bookkeeping and what its kind ignores."""
    unused = _UNUSED.get(cfg["model"]["kind"], {})
    kept = {}
    for section in ("model", "train", "data"):
        drop = unused.get(section, ()) + (_BOOKKEEPING if section == "train" else ())
        kept[section] = {k: v for k, v in cfg[section].items() if k not in drop}
    return kept


def _check_run_folder(run_dir: Path, cfg: RunConfig, resume: bool) -> None:
    config_path = run_dir / checkpoint.CONFIG_FILE
    if not config_path.exists():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise VaelabError(
                f"{run_dir} exists and is not a vaelab run folder; choose another --out"
            )
        return
    if not resume:
        raise VaelabError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    saved = checkpoint.read_run_config(run_dir)
    old, new = identity(to_dict(saved)), identity(to_dict(cfg))
    old["train"].pop("epochs")
    new["train"].pop("epochs")
    if old != new:
        raise VaelabError(
            f"{run_dir} was trained with other settings; resume it with the same ones"
        )


class Trainer:
    """Trains one model as `cfg` says, writing checkpoints and metrics into `run_dir`: a
    training group of one (see `vaelab.group`)."""

    def __init__(
        self,
        cfg: RunConfig,
        data: TensorData,
        run_dir: str | Path,
        reporter: Reporter | None = None,
    ) -> None:
        from vaelab.group import GroupTrainer, Member

        self.cfg = cfg.validate()
        self.data = data
        self.run_dir = Path(run_dir)
        self.group = GroupTrainer([Member(self.cfg, data, self.run_dir)], reporter)

    @property
    def epoch(self) -> int:
        return self.group.epoch

    @property
    def model(self) -> AutoEncoder:
        return self.group.model(0)

    def fit(self, resume: bool = False) -> AutoEncoder:
        return self.group.fit(resume=resume)[0]

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training set in a fresh random order; returns the mean terms."""
        return self.group.train_epoch()[0]

    def test_objective(self, batch: int = 1000) -> dict[str, float]:
        """The training objective on the test set, with its own fixed noise."""
        return self.group.test_objective(0, batch)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch log; a torn last line (from a kill mid-write) is ignored."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def train(
    cfg: RunConfig,
    data: TensorData,
    run_dir: str | Path,
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> AutoEncoder:
    """Train (or resume) one model; returns it in eval mode. See `Trainer`."""
    return Trainer(cfg, data, run_dir, reporter).fit(resume=resume)


def train_group(
    members: list[Any], *, resume: bool = False, reporter: Reporter | None = None
) -> list[AutoEncoder]:
    """Train (or resume) several runs as one stacked computation; see `vaelab.group`."""
    from vaelab.group import train_group as run_group

    return run_group(members, resume=resume, reporter=reporter)
