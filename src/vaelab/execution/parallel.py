"""Training a study's runs as work units on an executor (`executors`), with progress read
from the run folders (`progress.StudyProgress`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from vaelab.core.config import RunConfig
from vaelab.core.errors import VaelabError
from vaelab.core.folders import StudyFolder
from vaelab.data.mnist import MNIST
from vaelab.execution import executors
from vaelab.execution.progress import StudyProgress
from vaelab.execution.units import WorkUnit, data_fingerprint, make_units
from vaelab.training.identity import is_finished


@dataclass(frozen=True)
class ParallelOptions:
    jobs: int | None = None  # worker processes; None: chosen from the cores and GPUs
    executor: str = "local"  # "local" (this machine) or "ray"
    address: str | None = None  # the Ray cluster; None: RAY_ADDRESS or a new local one
    tensorboard: bool = False  # write TensorBoard scalars under <study>/tensorboard (the study)


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
        with StudyProgress(todo, console, jobs=jobs, units=units, n_train=len(mnist.y_train)):
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
        "status_dir": StudyFolder(out).workers,
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
