"""Training a study's runs as work units on an executor, with progress read from the run folders.

Progress comes from each run's metrics log, which every executor's workers append to once
per epoch, so a study shows the same bars whether its runs train here, in worker processes or
on other machines that share the study folder; and a whole-study ETA from measured epochs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vaelab import executors
from vaelab.config import RunConfig
from vaelab.data import MNIST
from vaelab.errors import VaelabError
from vaelab.train import METRICS_FILE, is_finished
from vaelab.units import WorkUnit, data_fingerprint, make_units

WORKERS_DIR = "workers"


@dataclass(frozen=True)
class ParallelOptions:
    jobs: int | None = None  # worker processes; None: chosen from the cores and GPUs
    executor: str = "local"  # "local" (this machine) or "ray"
    address: str | None = None  # the Ray cluster; None: RAY_ADDRESS or a new local one
    tensorboard: bool = False  # write TensorBoard scalars under <study>/tensorboard


def train_units(
    runs: Sequence[tuple[RunConfig, Path]],
    mnist: MNIST,
    out: Path,
    device: Any,
    console: Console,
    options: ParallelOptions | None = None,
) -> None:
    """Train every unfinished run of `runs` on the executor `options` asks for.

    Raises VaelabError naming the units that failed, after all the others have finished.
    """
    options = options or ParallelOptions()
    todo = [(c, Path(d)) for c, d in runs if not is_finished(Path(d), c)]
    if todo:
        executor, units, jobs = _plan(todo, mnist, out, device, console, options)
        with StudyProgress(todo, console, jobs=jobs, units=units):
            results = executor(units)
        failed = [r for r in results if "error" in r]
        if len(failed) == 1:  # its own line says what went wrong
            raise VaelabError(failed[0]["error"])
        if failed:
            lines = "; ".join(f"{r['unit']}: {r['error']}" for r in failed)
            raise VaelabError(
                f"{len(failed)} of {len(units)} units failed ({lines}); "
                "run the study again to resume them"
            )
    if options.tensorboard:
        from vaelab.tboard import write_scalars

        write_scalars(out / "tensorboard", [Path(d) for _, d in runs])


def _plan(
    todo: list[tuple[RunConfig, Path]],
    mnist: MNIST,
    out: Path,
    device: Any,
    console: Console,
    options: ParallelOptions,
) -> tuple[executors.Executor, list[WorkUnit], int]:
    """The executor, the units, and how many of them run at once."""
    on_gpu = str(device).startswith("cuda")
    kind = "cuda" if on_gpu else str(device)
    common = {
        "data_path": _data_path(todo[0][0]),
        "data_sha256": data_fingerprint(mnist),
        "status_dir": out / WORKERS_DIR,
    }
    if options.executor == "ray":
        executor = executors.ray_executor(options.address)
        units = make_units(todo, device=kind, threads=1, **common)
        console.print(f"executor: ray, {len(units)} units, 1 CPU{' and 1 GPU' * on_gpu} each")
        return executor, units, len(units)
    if options.executor != "local":
        raise VaelabError(f"unknown executor {options.executor!r}: choose local or ray")
    cores, gpus = executors.machine()
    n_units = len(make_units(todo, **common))
    jobs, threads, line = executors.choose_jobs(options.jobs, cores, gpus, on_gpu, n_units)
    if jobs == 1:  # this process, its threads as they are
        console.print(f"{line}, in this process")
        return executors.sequential(mnist), make_units(todo, device=str(device), **common), 1
    console.print(f"{line}, {threads} thread{'s' * (threads != 1)} each")
    units = make_units(todo, device=kind, threads=threads, **common)
    return executors.process_pool(jobs, threads=threads, gpus=gpus if on_gpu else 0), units, jobs


def _data_path(cfg: RunConfig) -> str | None:
    return str(Path(cfg.data.path).expanduser().resolve()) if cfg.data.path else None


# --- progress -------------------------------------------------------------------------------


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


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown"
    minutes, s = divmod(int(seconds + 0.5), 60)
    hours, m = divmod(minutes, 60)
    return f"ETA {hours}h{m:02d}m" if hours else f"ETA {m}m{s:02d}s"


def read_progress(run_dir: Path) -> tuple[int, float | None, dict[str, Any]]:
    """(epochs logged, mean seconds per epoch, the last row) from a run's metrics log."""
    path = Path(run_dir) / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0, None, {}
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
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
        eta = _format_seconds(study_eta(_by_unit(states, self.unit_of), self.jobs))
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
