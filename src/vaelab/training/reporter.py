"""What the trainer tells the outside world; the CLI and the study render it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vaelab.core.config import RunConfig, epochs_text
from vaelab.models import kinds


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI and the study render it."""

    def start(self, cfg: RunConfig, first_step: int, total: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    """Tells nothing: for library calls without a progress view."""

    def start(self, cfg: RunConfig, first_step: int, total: int, steps_per_epoch: int) -> None: ...
    def step(self, running_loss: Callable[[], float]) -> None: ...
    def epoch(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


def length_text(total: int, steps_per_epoch: int) -> str:
    """ "1000 steps (1.67 epochs of 600 steps)" or "1200 steps (2 epochs of 600 steps)"."""
    return f"{total} steps ({epochs_text(total, steps_per_epoch)} of {steps_per_epoch} steps)"


class PlainReporter:
    """One full line per epoch, written as it happens: for logs, pipes and `nohup`.

    `write` takes one line (default: print, flushed); nothing is cut to the terminal's width.
    """

    def __init__(self, label: str = "", write: Callable[[str], None] | None = None) -> None:
        self.label = label
        self.write = write or (lambda line: print(line, flush=True))
        self._name = ""
        self._total = self._epochs = 0

    def start(self, cfg: RunConfig, first_step: int, total: int, steps_per_epoch: int) -> None:
        self._name = f"{self.label}{kinds.record(cfg.model.kind).title} z={cfg.model.latent}"
        self._total, self._epochs = total, -(-total // steps_per_epoch)
        start = f"resuming after step {first_step}" if first_step else "starting"
        self.write(f"{self._name}: {start}; {length_text(total, steps_per_epoch)}")

    def step(self, running_loss: Callable[[], float]) -> None: ...

    def epoch(self, metrics: dict[str, Any]) -> None:
        test = f", test objective {metrics['test_loss']:.4g}" if "test_loss" in metrics else ""
        self.write(
            f"{self._name}: step {metrics['step']}/{self._total} "
            f"(epoch {metrics['epoch']}/{self._epochs}), "
            f"objective {metrics['loss']:.4g}{test} ({metrics.get('seconds', 0.0):.1f} s)"
        )

    def finish(self) -> None:
        self.write(f"{self._name}: done")
