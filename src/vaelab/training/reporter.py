"""What the trainer tells the outside world; the CLI and the study render it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vaelab.core.config import RunConfig


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI and the study render it."""

    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    """Tells nothing: for library calls without a progress view."""

    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class PlainReporter:
    """One full line per epoch, written as it happens: for logs, pipes and `nohup`.

    `write` takes one line (default: print, flushed); nothing is cut to the terminal's width.
    """

    def __init__(self, label: str = "", write: Callable[[str], None] | None = None) -> None:
        self.label = label
        self.write = write or (lambda line: print(line, flush=True))
        self._name = ""
        self._epochs = 0

    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None:
        self._name = f"{self.label}{cfg.model.kind.upper()} z={cfg.model.latent}"
        self._epochs = cfg.train.epochs
        start = f"resuming after epoch {first_epoch}" if first_epoch else "starting"
        self.write(f"{self._name}: {start}; {cfg.train.epochs} epochs of {steps_per_epoch} steps")

    def step(self, running_loss: Callable[[], float]) -> None: ...

    def epoch(self, metrics: dict[str, Any]) -> None:
        test = f", test objective {metrics['test_loss']:.3f}" if "test_loss" in metrics else ""
        self.write(
            f"{self._name}: epoch {metrics['epoch']}/{self._epochs}, "
            f"objective {metrics['loss']:.3f}{test} ({metrics.get('seconds', 0.0):.1f} s)"
        )

    def finish(self) -> None:
        self.write(f"{self._name}: done")
