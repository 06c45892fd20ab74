"""Training one model: its data as tensors on the device, its run folder, its metrics log.

`Trainer` and `train` train one run as a training group of one: the loop itself, its
checkpoints, resume, milestones and safety live in `vaelab.group`, the stacked arithmetic in
`vaelab.stacked`. Randomness comes from two generators seeded by the config (batch order on
the CPU, the noise of z on the device) whose states are saved in every checkpoint, so a run
that is killed and resumed ends with the same weights, bit for bit on the CPU, as one that
was not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from vaelab import checkpoint
from vaelab.config import RunConfig, check_device, to_dict
from vaelab.data import MNIST, semi_supervised_labels, test_subset, to_float
from vaelab.errors import VaelabError
from vaelab.lock import LOCK_FILE
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
    sha256: str = ""  # content fingerprint of the MNIST these came from ("" unknown)
    source: str = ""  # where that MNIST came from

    @classmethod
    def from_mnist(
        cls, mnist: MNIST, cfg: RunConfig, device: torch.device | str | None = None
    ) -> TensorData:
        """The run's split of `mnist`, on `device` (None: the device `cfg.train.device` names)."""
        d = cfg.data
        device = resolve_device(cfg.train.device) if device is None else device
        n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
        y_train = mnist.y_train[:n].astype(np.int64)
        if cfg.model.kind == "cvae":
            label_seed = cfg.train.seed if d.label_seed is None else d.label_seed
            y_train = semi_supervised_labels(y_train, min(d.n_labelled, n), label_seed)
        test = test_subset(mnist.y_test, d.test_size, d.seed)
        return cls(
            x_train=torch.from_numpy(to_float(mnist.x_train[:n])).to(device),
            y_train=torch.from_numpy(y_train).to(device),
            x_test=torch.from_numpy(to_float(mnist.x_test[test])).to(device),
            y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)).to(device),
            sha256=mnist.sha256,
            source=mnist.source,
        )


def with_data(cfg: RunConfig, data: TensorData) -> RunConfig:
    """`cfg` as it will be recorded: the data's fingerprint and source, the device used.

    A config that names a device other than the data's, or a data fingerprint other than the
    data's, is an error: config.json must never record what did not happen.
    """
    used = data.x_train.device
    wanted = cfg.train.device
    if wanted != "auto" and not _same_device(resolve_device(wanted), used):
        raise VaelabError(
            f"the settings ask for device {wanted} but the data is on {used}; "
            f"build the data with TensorData.from_mnist(mnist, cfg) to follow the settings"
        )
    if cfg.data.sha256 and data.sha256 and cfg.data.sha256 != data.sha256:
        raise VaelabError(
            f"the settings expect data with sha256 {cfg.data.sha256[:12]}..., "
            f"but {data.source or 'the data given'} has {data.sha256[:12]}..."
        )
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, device=str(used)),
        data=dataclasses.replace(
            cfg.data,
            sha256=data.sha256 or cfg.data.sha256,
            source=data.source or cfg.data.source,
        ),
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


def _same_device(wanted: torch.device, used: torch.device) -> bool:
    if wanted.type != used.type:
        return False
    return wanted.index is None or wanted.index == (used.index or 0)


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N as a torch device that exists here, or one clear VaelabError."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise VaelabError(f"device {name} was asked for, but torch sees no CUDA GPU")
        index = int(name.removeprefix("cuda:")) if ":" in name else 0
        if index >= count:
            raise VaelabError(f"device {name} was asked for, but torch sees {count} CUDA GPU(s)")
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


# Settings that change no number of a run: where and how often it saves, where it runs, where
# its data was read from (the data's content is `data.sha256`, which is kept).
_BOOKKEEPING = {
    "train": ("checkpoint_every", "eval_every", "device"),
    "data": ("path", "source"),
}
# Settings a model kind never reads, so changing them leaves its numbers alone.
_UNUSED = {
    "ae": {
        "model": ("embed", "n_labels"),
        "train": ("kl_weight", "n_samples"),
        "data": ("n_labelled", "label_seed"),
    },
    "vae": {"model": ("embed", "n_labels"), "data": ("n_labelled", "label_seed")},
    "cvae": {},
}


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings that change a run's numbers: all but bookkeeping and what its kind ignores.

    The data enters through its content fingerprint `data.sha256`, never through its path.
    """
    unused = _UNUSED.get(cfg["model"]["kind"], {})
    kept = {}
    for section in ("model", "train", "data"):
        drop = unused.get(section, ()) + _BOOKKEEPING.get(section, ())
        kept[section] = {k: v for k, v in cfg[section].items() if k not in drop}
    kept["data"].setdefault("sha256", None)
    return kept


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`section.name: old -> new` for every setting of two identities that differs."""
    found = []
    for section in old.keys() | new.keys():
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                found.append(f"{section}.{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    return sorted(found)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text[:15] + '..."' if isinstance(value, str) and len(value) > 20 else text


class RunFolderError(VaelabError):
    """A run folder that cannot be used as asked; `reason` says why in library words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "not a run", "holds a run" or "other settings"


def _check_run_folder(run_dir: Path, cfg: RunConfig, resume: bool) -> None:
    config_path = run_dir / checkpoint.CONFIG_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a folder", "not a run")
    if not config_path.exists():
        if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
            raise RunFolderError(
                f"{run_dir} exists and is not a vaelab run folder; train into another folder",
                "not a run",
            )
        return
    if not resume:
        raise RunFolderError(
            f"{run_dir} already holds a run; resume it (resume=True) or train into another folder",
            "holds a run",
        )
    saved = checkpoint.read_run_config(run_dir)
    old, new = identity(to_dict(saved)), identity(to_dict(cfg))
    old["train"].pop("epochs")
    new["train"].pop("epochs")
    if old["data"]["sha256"] is None:  # a run from before fingerprints: its data is unknown
        old["data"]["sha256"] = new["data"]["sha256"]
    if old != new:
        raise RunFolderError(
            f"{run_dir} was trained with other settings ({'; '.join(differences(old, new))}); "
            "resume it with the saved ones",
            "other settings",
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

        self.cfg = with_data(cfg.validate(), data)
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
    progress: bool = False,
) -> AutoEncoder:
    """Train (or resume) one model; returns it in eval mode. See `Trainer`.

    `progress=True` prints one line per epoch (a `reporter` given takes precedence).
    """
    if reporter is None and progress:
        from vaelab.progress import PlainReporter

        reporter = PlainReporter()
    return Trainer(cfg, data, run_dir, reporter).fit(resume=resume)


def train_group(
    members: list[Any], *, resume: bool = False, reporter: Reporter | None = None
) -> list[AutoEncoder]:
    """Train (or resume) several runs as one stacked computation; see `vaelab.group`."""
    from vaelab.group import train_group as run_group

    return run_group(members, resume=resume, reporter=reporter)
