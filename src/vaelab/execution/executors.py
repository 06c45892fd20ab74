"""Executors: functions from a list of work units to their results, one per unit, in order.

- `sequential()`: this process, one unit after another.
- `process_pool(jobs)`: `jobs` spawned worker processes, each pinned to its share of the cores
  and, when there are several GPUs, to one GPU. A unit whose worker fails or is killed is
  retried once (in a fresh worker); the others go on either way.
- `ray_executor(address)`: each unit a Ray task asking for its CPUs or GPU; a task lost with
  its worker or node is retried by Ray.
Every retry resumes each run from its last checkpoint, so it repeats at most the epochs since.

A result is the record `run_unit` returns, or `{"unit": name, "error": one line}`.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from vaelab.core.errors import VaelabError, WriteError
from vaelab.core.util import first_line, one_line
from vaelab.execution.units import WorkUnit, run_unit

Result = dict[str, Any]
Executor = Callable[[list[WorkUnit]], list[Result]]
RAY_HINT = "the ray executor needs Ray: pip install 'vaelab[ray]'"


def sequential(mnist: Any = None) -> Executor:
    """Run the units here, in order; `mnist` is data this process already holds."""

    def run(units: list[WorkUnit]) -> list[Result]:
        results = []
        for unit in units:
            try:
                results.append(run_unit(unit, mnist=mnist))
            except WriteError:  # a full or read-only disk: every other unit would fail too
                raise
            except VaelabError as err:
                results.append(_failure(unit, str(err)))
        return results

    return run


@dataclass
class _Worker:
    process: Any
    conn: Any
    job: tuple[int, WorkUnit, int] | None = None  # (index, unit, attempt) being run


def process_pool(jobs: int, *, threads: int = 0, gpus: int = 0, retries: int = 1) -> Executor:
    """Run the units in `jobs` worker processes (see the module docstring).

    Each worker runs with `threads` torch, OpenMP and MKL threads (0: the defaults), set before
    torch starts a thread pool; worker s sees only GPU s mod `gpus` when `gpus` > 1. A worker
    runs unit after unit; one that dies is replaced, and its unit retried `retries` times.
    """
    ctx = multiprocessing.get_context("spawn")

    def run(units: list[WorkUnit]) -> list[Result]:
        pending = deque((i, u, 1) for i, u in enumerate(units))
        results: list[Result | None] = [None] * len(units)
        workers: list[_Worker | None] = [None] * max(1, min(jobs, len(units)))
        try:
            while pending or any(w is not None and w.job for w in workers):
                for s, worker in enumerate(workers):
                    if pending and (worker is None or worker.job is None):
                        worker = worker or _spawn(ctx, _worker_env(s, threads, gpus))
                        worker.job = pending.popleft()
                        worker.conn.send((worker.job[1].to_json(), worker.job[2]))
                        workers[s] = worker
                busy = [w for w in workers if w is not None and w.job is not None]
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for s, worker in enumerate(workers):
                    if worker is None or worker.job is None:
                        continue
                    outcome = _collect(worker)
                    if outcome is None:
                        continue
                    (index, unit, attempt), (result, retry) = worker.job, outcome
                    worker.job = None
                    if not worker.process.is_alive():
                        workers[s] = None
                    if retry and attempt <= retries:
                        pending.append((index, unit, attempt + 1))
                    else:
                        results[index] = result
        finally:
            _stop(workers)
        return [r for r in results if r is not None]

    return run


def _worker_env(slot: int, threads: int, gpus: int) -> dict[str, str]:
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} if threads else {}
    return env | ({"CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus > 1 else {})


def _spawn(ctx: Any, env: dict[str, str]) -> _Worker:
    here, there = ctx.Pipe()
    process = ctx.Process(target=_worker_loop, args=(there, env), name="vaelab worker")
    process.start()
    there.close()  # the child holds its own end; EOF here then means the child is gone
    return _Worker(process, here)


def _collect(worker: _Worker) -> tuple[Result, bool] | None:
    """The finished job's result and whether a failure deserves a retry; None if still running.

    A crash is retried; a user error (a VaelabError) would only fail the same way again.
    """
    assert worker.job is not None
    _, unit, attempt = worker.job
    try:
        if not worker.conn.poll():
            if worker.process.is_alive():
                return None
            raise EOFError
        message = worker.conn.recv()
    except (EOFError, OSError):
        worker.process.join()
        code = worker.process.exitcode
        return _failure(unit, f"its worker died (exit code {code})", attempt), True
    if "error" in message:
        return _failure(unit, message["error"], attempt), message["retry"]
    return message["result"], False


def _stop(workers: list[_Worker | None]) -> None:
    for worker in workers:
        if worker is None:
            continue
        if worker.job is None and worker.process.is_alive():
            worker.conn.send(None)  # idle: asked to exit
        else:
            worker.process.terminate()
    for worker in workers:
        if worker is not None:
            worker.process.join()
            worker.conn.close()


def _worker_loop(conn: Any, env: dict[str, str]) -> None:
    """A pool worker: pin threads and GPU, then run each unit it is sent until told to stop."""
    os.environ.update(env)
    while (item := conn.recv()) is not None:
        unit_json, attempt = item
        unit = WorkUnit.from_json(unit_json)
        try:
            message: dict[str, Any] = {"result": run_unit(unit, attempt=attempt)}
        except VaelabError as err:
            message = {"error": one_line(err), "retry": False}
        except Exception as err:  # a bug or a resource failure: shown in full, retried once
            traceback.print_exc()
            message = {"error": f"{type(err).__name__}: {first_line(err)}", "retry": True}
        conn.send(message)


def _failure(unit: WorkUnit, message: str, attempt: int = 1) -> Result:
    return {"unit": unit.name, "error": message, "attempt": attempt}


# --- Ray ----------------------------------------------------------------------------------


def ray_executor(address: str | None = None, *, retries: int = 2) -> Executor:
    """Run each unit as a Ray task on the cluster at `address` (None: RAY_ADDRESS or a new
    local one). A task whose worker or node dies is retried up to `retries` times."""
    try:
        import ray
    except ImportError:
        raise VaelabError(RAY_HINT) from None

    def run(units: list[WorkUnit]) -> list[Result]:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        task = ray.remote(_ray_task)
        refs = [
            task.options(
                num_cpus=max(1, u.threads),
                num_gpus=1 if u.device.startswith("cuda") else 0,
                max_retries=retries,
                retry_exceptions=False,
                name=f"vaelab {u.name}",
            ).remote(u.to_json())
            for u in units
        ]
        results = []
        for unit, ref in zip(units, refs, strict=True):
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayError as err:
                line = f"{type(err).__name__}: {first_line(err)}"
                results.append(_failure(unit, line, retries + 1))
        return results

    return run


def _ray_task(unit_json: str) -> Result:
    unit = WorkUnit.from_json(unit_json)
    try:
        return run_unit(unit)
    except VaelabError as err:
        return _failure(unit, one_line(err))


# --- how many workers -----------------------------------------------------------------------


def machine() -> tuple[int, int]:
    """(cores this process may use, CUDA GPUs torch sees)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1), torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_jobs(
    jobs: int | None, cores: int, gpus: int, on_gpu: bool, n_units: int
) -> tuple[int, int, str]:
    """(workers, threads per worker, a line saying why). jobs x threads <= cores, always.

    By default one worker per GPU on a GPU, else one per two cores: a small model's matmuls
    gain little from more threads, and two threads per worker keep a worker's own steps fast.
    Never more workers than units: a worker with nothing to train would only hold cores.
    """
    why = f"{cores} core{'s' * (cores != 1)}, " + (f"{gpus} GPU" if gpus else "no GPU")
    if jobs is None:
        jobs = max(1, gpus) if on_gpu else max(1, cores // 2)
        jobs = max(1, min(jobs, n_units))
        how = "chosen from"
    elif jobs > cores:
        jobs, how = cores, f"asked {jobs}, at most one per core;"
    else:
        how = "asked; machine:"
    if jobs > max(1, n_units):
        units = f"{n_units} unit{'s' * (n_units != 1)}"
        jobs, how = max(1, n_units), f"asked {jobs}, one per unit, {units};"
    return jobs, max(1, cores // jobs), f"jobs: {jobs} ({how} {why})"
