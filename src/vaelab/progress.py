"""Training progress: rich bars (one per run) on a terminal, one plain line per epoch elsewhere."""

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


class Reporting:
    """Makes a reporter per run: rich bars on a terminal, plain lines anywhere else.

    Use as a context manager around the runs; `reporter(label)` gives each run its reporter.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = make_progress(console) if self.live else None

    def __enter__(self) -> Reporting:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def reporter(self, label: str = "") -> RichReporter | PlainReporter:
        if self.progress is not None:
            return RichReporter(self.progress, label)
        return PlainReporter(label, self.line)

    def line(self, text: str) -> None:
        """A full line, never wrapped or cut, above the bars if there are any."""
        target = self.progress.console if self.progress is not None else self.console
        target.print(text, soft_wrap=True, markup=False, highlight=False)
        if not self.live:
            target.file.flush()
