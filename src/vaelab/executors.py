"""Executors: functions from a list of work units to their results, one per unit, in order.

- `sequential()`: this process, one unit after another.
- `process_pool(jobs)`: one fresh (spawned) process per unit, at most `jobs` at a time, each
  pinned to its share of the cores and, when there are several GPUs, to one GPU. A unit whose
  worker fails or is killed is retried once; the others go on either way.
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

from vaelab.errors import VaelabError
from vaelab.units import WorkUnit, run_unit

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
            except VaelabError as err:
                results.append(_failure(unit, str(err)))
        return results

    return run


@dataclass
class _Job:
    process: Any
    conn: Any
    index: int
    unit: WorkUnit
    attempt: int


def process_pool(jobs: int, *, gpus: int = 0, retries: int = 1) -> Executor:
    """Run the units in at most `jobs` worker processes at once (see the module docstring).

    Worker slot s sees only GPU s mod `gpus` when `gpus` > 1. Each worker runs with its unit's
    `threads` as torch, OpenMP and MKL threads, set before torch starts any thread pool.
    """
    ctx = multiprocessing.get_context("spawn")

    def run(units: list[WorkUnit]) -> list[Result]:
        pending = deque((i, u, 1) for i, u in enumerate(units))
        results: list[Result | None] = [None] * len(units)
        slots: list[_Job | None] = [None] * max(1, jobs)
        try:
            while pending or any(slots):
                for s, job in enumerate(slots):
                    if job is None and pending:
                        slots[s] = _start(ctx, *pending.popleft(), _slot_env(s, gpus))
                wait([j.process.sentinel for j in slots if j is not None], timeout=1.0)
                for s, job in enumerate(slots):
                    if job is None or job.process.is_alive():
                        continue
                    slots[s] = None
                    result, retry = _collect(job)
                    if retry and job.attempt <= retries:
                        pending.append((job.index, job.unit, job.attempt + 1))
                    else:
                        results[job.index] = result
        finally:
            for job in slots:
                if job is not None:
                    job.process.terminate()
                    job.process.join()
        return [r for r in results if r is not None]

    return run


def _slot_env(slot: int, gpus: int) -> dict[str, str]:
    return {"CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus > 1 else {}


def _start(ctx: Any, index: int, unit: WorkUnit, attempt: int, env: dict[str, str]) -> _Job:
    if unit.threads:
        env = env | {k: str(unit.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_worker_main, args=(unit.to_json(), attempt, env, send), name=f"vaelab {unit.name}"
    )
    process.start()
    send.close()  # the child holds its own copy; EOF here then means the child is gone
    return _Job(process, receive, index, unit, attempt)


def _collect(job: _Job) -> tuple[Result, bool]:
    """The job's result and whether a failure is worth a retry (a crash, not a user error)."""
    message = job.conn.recv() if job.conn.poll() else None
    job.conn.close()
    job.process.join()
    if message is None:
        code = job.process.exitcode
        return _failure(job.unit, f"its worker died (exit code {code})", job.attempt), True
    if "error" in message:
        return _failure(job.unit, message["error"], job.attempt), message["retry"]
    return message["result"], False


def _worker_main(unit_json: str, attempt: int, env: dict[str, str], conn: Any) -> None:
    """Entry point of a pool worker: pin threads and GPU, run the unit, send back one message."""
    os.environ.update(env)
    unit = WorkUnit.from_json(unit_json)
    try:
        message: dict[str, Any] = {"result": run_unit(unit, attempt=attempt)}
    except VaelabError as err:
        message = {"error": " ".join(str(err).split()), "retry": False}
    except Exception as err:  # a bug or a resource failure: shown in full, retried once
        traceback.print_exc()
        message = {"error": f"{type(err).__name__}: {err}".splitlines()[0], "retry": True}
    conn.send(message)
    conn.close()


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
                line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                results.append(_failure(unit, f"{type(err).__name__}: {line}", retries + 1))
        return results

    return run


def _ray_task(unit_json: str) -> Result:
    unit = WorkUnit.from_json(unit_json)
    try:
        return run_unit(unit)
    except VaelabError as err:
        return _failure(unit, " ".join(str(err).split()))


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
    return jobs, max(1, cores // jobs), f"jobs: {jobs} ({how} {why})"
