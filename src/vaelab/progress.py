"""Terminal rendering of training progress with rich: one bar per run, the running loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vaelab.config import RunConfig

UPDATE_EVERY = 25  # steps between redraws of the running loss (reading it costs a sync on GPU)


def make_progress(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class RichReporter:
    """Shows one training run as a bar of steps, with the epoch and the latest loss.

    `progress` may be shared by several runs (the study); `label` prefixes the description.
    """

    def __init__(self, progress: Progress, label: str = "") -> None:
        self.progress = progress
        self.label = label
        self.task: Any = None
        self._epoch = self._epochs = self._steps = self._total = 0

    def start(self, cfg: RunConfig, first_epoch: int, steps_per_epoch: int) -> None:
        self._epoch, self._epochs = first_epoch, cfg.train.epochs
        self._total = cfg.train.epochs * steps_per_epoch
        self.task = self.progress.add_task(
            f"{self.label}{cfg.model.kind.upper()} z={cfg.model.latent}",
            total=self._total,
            completed=first_epoch * steps_per_epoch,
            status=self._status(),
        )

    def step(self, running_loss: Callable[[], float]) -> None:
        self._steps += 1
        if self._steps % UPDATE_EVERY == 0:
            self.progress.update(
                self.task, advance=UPDATE_EVERY, status=self._status(f"loss {running_loss():.2f}")
            )

    def epoch(self, metrics: dict[str, Any]) -> None:
        self.progress.update(self.task, advance=self._steps % UPDATE_EVERY)
        self._epoch, self._steps = metrics["epoch"], 0
        test = f" test {metrics['test_loss']:.2f}" if "test_loss" in metrics else ""
        self.progress.update(self.task, status=self._status(f"loss {metrics['loss']:.2f}{test}"))

    def finish(self) -> None:
        self.progress.update(self.task, completed=self._total)

    def _status(self, detail: str = "") -> str:
        return f"epoch {self._epoch}/{self._epochs} {detail}".rstrip()
