"""Training progress: rich bars (one per run) on a terminal, one plain line per epoch elsewhere.

A study's progress comes from each run's metrics log, which every executor's workers append
to once per epoch, so it shows the same bars whether its runs train here, in worker processes
or on other machines that share the study folder; and a whole-study ETA from measured epochs.
Nothing here imports torch: `vaelab status` reads a study's progress without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vaelab.core.config import RunConfig
from vaelab.core.folders import RunFolder
from vaelab.core.util import format_duration
from vaelab.training.reporter import PlainReporter

if TYPE_CHECKING:
    from vaelab.execution.units import WorkUnit

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


def study_eta(states: Sequence[tuple[int, int, float | None]], jobs: int) -> float | None:
    """Seconds left for runs given as (epochs done, epochs in all, seconds per epoch or None).

    A run not yet measured is costed at the mean of the measured ones. `jobs` runs train at
    once, and no run can finish sooner than its own remaining epochs allow.
    """
    known = [s for _, _, s in states if s is not None]
    if not known:
        return None
    mean = sum(known) / len(known)
    left = [(total - done) * (s if s is not None else mean) for done, total, s in states]
    left = [t for t in left if t > 0]
    if not left:
        return 0.0
    return max(sum(left) / max(1, min(jobs, len(left))), max(left))


def _by_unit(
    states: Sequence[tuple[int, int, float | None]], unit_of: Sequence[int]
) -> list[tuple[int, int, float | None]]:
    """One state per unit: its slowest member's epochs, at the unit's seconds per epoch."""
    units: dict[int, tuple[int, int, float | None]] = {}
    for (done, total, seconds), unit in zip(states, unit_of, strict=True):
        if unit not in units:
            units[unit] = (done, total, seconds)
            continue
        d, t, s = units[unit]
        units[unit] = (min(d, done), max(t, total), s if s is not None else seconds)
    return list(units.values())


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown"
    return f"ETA {format_duration(seconds) if seconds > 0.5 else '0m00s'}"


def read_progress(run_dir: Path) -> tuple[int, float | None, dict[str, Any]]:
    """(epochs logged, mean seconds per epoch, the last row) from a run's metrics log."""
    rows = RunFolder(run_dir).read_metrics()  # a line being written is left out
    seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), int | float)]
    mean = sum(seconds) / len(seconds) if seconds else None
    return (rows[-1].get("epoch", 0) if rows else 0), mean, (rows[-1] if rows else {})


class StudyProgress:
    """One bar per run and one for the study, redrawn from the metrics logs in a thread."""

    def __init__(
        self,
        runs: Sequence[tuple[RunConfig, Path]],
        console: Console,
        *,
        jobs: int,
        units: Sequence[WorkUnit] = (),
    ) -> None:
        self.runs = list(runs)
        self.jobs = jobs
        # the runs of one unit train together: their epochs cost the unit's time once
        unit_of = {Path(m.run_dir): i for i, u in enumerate(units) for m in u.members}
        self.unit_of = [unit_of.get(Path(d), len(units) + j) for j, (_, d) in enumerate(runs)]
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.console = console
        self.plain = not console.is_terminal  # a log: full lines as epochs finish, no bars
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tasks: list[Any] = []
        self._study: Any = None
        self._printed = [0] * len(self.runs)

    def __enter__(self) -> StudyProgress:
        n = len(self.runs)
        total = sum(c.train.epochs for c, _ in self.runs)
        self._study = self.progress.add_task("study", total=total, status="")
        for i, (cfg, _) in enumerate(self.runs, start=1):
            m = cfg.model
            label = f"[{i}/{n}] {m.kind.upper()} z={m.latent} seed {cfg.train.seed}"
            self._tasks.append(self.progress.add_task(label, total=cfg.train.epochs, status=""))
        if not self.plain:
            self.progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.update()
        if not self.plain:
            self.progress.stop()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.update()

    def update(self) -> None:
        states = []
        for task, (cfg, run_dir) in zip(self._tasks, self.runs, strict=True):
            done, seconds, last = read_progress(run_dir)
            states.append((done, cfg.train.epochs, seconds))
            status = f"loss {last['loss']:.2f}" if isinstance(last.get("loss"), float) else ""
            if isinstance(last.get("test_loss"), float):
                status += f" test {last['test_loss']:.2f}"
            self.progress.update(task, completed=done, status=status)
        done_all = sum(d for d, _, _ in states)
        eta = _eta(study_eta(_by_unit(states, self.unit_of), self.jobs))
        self.progress.update(self._study, completed=done_all, status=eta)
        if self.plain:
            self._print_lines(states, eta)

    def _print_lines(self, states: list[tuple[int, int, float | None]], eta: str) -> None:
        """One full line per run and finished epoch, with the study's ETA (for logs)."""
        for i, (task, (done, total, _)) in enumerate(zip(self._tasks, states, strict=True)):
            if done > self._printed[i]:
                self._printed[i] = done
                t = self.progress.tasks[task]
                line = f"{t.description}: epoch {done}/{total} {t.fields['status']}; study {eta}"
                self.console.print(line, soft_wrap=True, markup=False, highlight=False)
