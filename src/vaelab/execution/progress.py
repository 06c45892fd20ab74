"""Training progress: rich bars (one per run) on a terminal, one plain line per epoch elsewhere.

A study's progress comes from each run's metrics log, which every executor's workers append
to once per epoch, so it shows the same bars whether its runs train here, in worker processes
or on other machines that share the study folder; and a whole-study ETA from measured steps.
Progress is counted in optimizer steps, the training clock. Nothing here imports torch:
`vaelab status` reads a study's progress without it.
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
from vaelab.core.folders import RunFolder, row_step
from vaelab.core.util import format_duration
from vaelab.models import kinds
from vaelab.training.reporter import PlainReporter

if TYPE_CHECKING:
    from vaelab.execution.units import WorkUnit

MNIST_TRAIN = 60000  # training images when the data at hand is not known (`vaelab status`)
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

    def start(self, cfg: RunConfig, first_step: int, total: int, steps_per_epoch: int) -> None:
        self._epoch, self._epochs = first_step // steps_per_epoch, -(-total // steps_per_epoch)
        self._total = total
        self.task = self.progress.add_task(
            f"{self.label}{kinds.record(cfg.model.kind).title} z={cfg.model.latent}",
            total=self._total,
            completed=first_step,
            status=self._status(),
        )

    def step(self, running_loss: Callable[[], float]) -> None:
        self._steps += 1
        if self._steps % UPDATE_EVERY == 0:
            self.progress.update(
                self.task, advance=UPDATE_EVERY, status=self._status(f"loss {running_loss():.4g}")
            )

    def epoch(self, metrics: dict[str, Any]) -> None:
        self._epoch, self._steps = metrics["epoch"], 0
        test = f" test {metrics['test_loss']:.4g}" if "test_loss" in metrics else ""
        self.progress.update(
            self.task,
            completed=metrics["step"],
            status=self._status(f"loss {metrics['loss']:.4g}{test}"),
        )

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
    """Seconds left for runs given as (steps done, steps in all, seconds per step or None).

    A run not yet measured is costed at the mean of the measured ones. `jobs` runs train at
    once, and no run can finish sooner than its own remaining steps allow.
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
    """One state per unit: its slowest member's steps, at the unit's seconds per step."""
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


def run_length(cfg: RunConfig, n_train: int = MNIST_TRAIN) -> tuple[int, int]:
    """(steps in all, steps per epoch) of a run on `n_train` available training images."""
    n = cfg.data.train_images(n_train)
    return cfg.train.total_steps(n), cfg.train.steps_per_epoch(n)


def read_progress(run_dir: Path, steps_per_epoch: int) -> tuple[int, float | None, dict[str, Any]]:
    """(steps logged, mean seconds per step, the last row) from a run's metrics log."""
    rows = RunFolder(run_dir).read_metrics()  # a line being written is left out
    done = row_step(rows[-1], steps_per_epoch) if rows else 0
    seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), int | float)]
    mean = sum(seconds) / done if seconds and done else None
    return done, mean, (rows[-1] if rows else {})


class StudyProgress:
    """One bar per run and one for the study, redrawn from the metrics logs in a thread."""

    def __init__(
        self,
        runs: Sequence[tuple[RunConfig, Path]],
        console: Console,
        *,
        jobs: int,
        units: Sequence[WorkUnit] = (),
        n_train: int = MNIST_TRAIN,
    ) -> None:
        self.runs = list(runs)
        self.jobs = jobs
        self.lengths = [run_length(cfg, n_train) for cfg, _ in self.runs]  # (total, per epoch)
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
        total = sum(steps for steps, _ in self.lengths)
        self._study = self.progress.add_task("study", total=total, status="")
        for i, ((cfg, _), (steps, _)) in enumerate(zip(self.runs, self.lengths, strict=True), 1):
            m = cfg.model
            label = f"[{i}/{n}] {kinds.record(m.kind).title} z={m.latent} seed {cfg.train.seed}"
            self._tasks.append(self.progress.add_task(label, total=steps, status=""))
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
        for task, (_, run_dir), (steps, per) in zip(
            self._tasks, self.runs, self.lengths, strict=True
        ):
            done, seconds, last = read_progress(run_dir, per)
            states.append((done, steps, seconds))
            status = f"loss {last['loss']:.4g}" if isinstance(last.get("loss"), float) else ""
            if isinstance(last.get("test_loss"), float):
                status += f" test {last['test_loss']:.4g}"
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
                t, per = self.progress.tasks[task], self.lengths[i][1]
                where = f"step {done}/{total} (epoch {-(-done // per)}/{-(-total // per)})"
                line = f"{t.description}: {where} {t.fields['status']}; study {eta}"
                self.console.print(line, soft_wrap=True, markup=False, highlight=False)
