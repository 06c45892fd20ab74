"""Work units: what one worker trains by itself, as plain data that any process can run.

A unit names its member runs (each a RunConfig as a dict and a run folder), where the data
comes from and the fingerprint it must have, and the device and threads to use. It pickles
and round-trips through JSON, so a process pool or a Ray task on another machine can run it:
`run_unit` loads the data in the worker, checks its fingerprint and trains (or resumes) every
member into its own folder. Re-running a unit resumes from each member's last checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab.core import fileio
from vaelab.core.config import RunConfig, from_dict, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder
from vaelab.core.lock import folder_lock
from vaelab.data.mnist import MNIST, load_mnist
from vaelab.data.tensors import compact_data
from vaelab.training.identity import is_finished
from vaelab.training.trainer import TrainingRun, stack_key, train_group

# Runs of one seed that can share one stacked computation (same kind, batch, train-set and
# layer sizes; the latent size may differ) go into one unit and train as one group
# (`vaelab.training.trainer`). Seeds stay apart: a seed added later then trains in the same
# company as the others did, so its models' floats never depend on which other seeds were
# trained, and a cluster gets a unit per kind and seed to spread.
GROUP_RUNS = True


@dataclass(frozen=True)
class UnitRun:
    """One run of a unit: its settings (a RunConfig as a dict) and its run folder."""

    config: dict[str, Any]
    run_dir: str

    def run_config(self) -> RunConfig:
        return from_dict(RunConfig, self.config).validate()


@dataclass(frozen=True)
class WorkUnit:
    name: str  # its first run folder's name (+N more members): shown in progress and errors
    members: tuple[UnitRun, ...]
    data_path: str | None  # as `load_mnist` takes it; None: the cache on the worker's machine
    data_sha256: str  # the fingerprint the loaded data must have
    device: str = "cpu"  # "cpu", "cuda" (the worker's one visible GPU) or "cuda:N"
    threads: int = 0  # torch threads in the worker; 0 leaves the process's setting alone
    status_dir: str | None = None  # the worker writes <name>.json (host, pid, attempt) here

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkUnit:
        raw = json.loads(text)
        raw["members"] = tuple(UnitRun(**m) for m in raw["members"])
        return cls(**raw)


def data_fingerprint(mnist: MNIST) -> str:
    """sha256 of the four arrays' values: the data's identity, whichever file held it."""
    known = getattr(mnist, "sha256", "")
    if known:
        return known
    digest = hashlib.sha256()
    for array in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def unit_key(cfg: RunConfig) -> tuple[Any, ...]:
    """Runs with equal keys train as one stacked computation; the latent size may differ."""
    return (*stack_key(cfg), cfg.data.train_size, cfg.data.validation, cfg.train.seed)


def make_units(
    runs: Iterable[tuple[RunConfig, Path]],
    *,
    data_path: str | None,
    data_sha256: str,
    device: str = "cpu",
    threads: int = 0,
    status_dir: Path | None = None,
    grouped: bool = GROUP_RUNS,
) -> list[WorkUnit]:
    """The units that train `runs`, in the order of their first run.

    What goes into a unit depends only on the runs, never on the number of workers, so a
    model's numbers do not depend on how many workers trained the study.
    """
    groups: dict[Any, list[tuple[RunConfig, Path]]] = {}
    for i, (cfg, run_dir) in enumerate(runs):
        groups.setdefault(unit_key(cfg) if grouped else i, []).append((cfg, run_dir))
    units = []
    for members in groups.values():
        name = Path(members[0][1]).name  # run folders are unique, and so are unit names
        if len(members) > 1:
            name += f"+{len(members) - 1}"
        units.append(
            WorkUnit(
                name=name,
                members=tuple(UnitRun(to_dict(c), str(d)) for c, d in members),
                data_path=data_path,
                data_sha256=data_sha256,
                device=device,
                threads=threads,
                status_dir=str(status_dir) if status_dir is not None else None,
            )
        )
    return units


def run_unit(unit: WorkUnit, *, mnist: MNIST | None = None, attempt: int = 1) -> dict[str, Any]:
    """Train or resume every member of `unit`; returns a JSON-able record of what was done.

    `mnist` skips loading when the caller already holds the data (it is checked all the same).
    """
    started = time.perf_counter()
    _write_status(unit, attempt)
    if unit.threads:
        torch.set_num_threads(unit.threads)
    mnist = mnist if mnist is not None else load_mnist(unit.data_path)
    found = data_fingerprint(mnist)
    if found != unit.data_sha256:
        raise VaelabError(
            f"unit {unit.name}: the data at {unit.data_path or 'the cache'} on "
            f"{socket.gethostname()} has fingerprint {found[:12]}, expected "
            f"{unit.data_sha256[:12]}; give every node the same MNIST"
        )
    first_steps = []
    for m in unit.members:
        cfg = m.run_config()
        n = cfg.data.train_images(len(mnist.y_train))
        first_steps.append(RunFolder(m.run_dir).latest_step(cfg.train.steps_per_epoch(n)))
    _train_members(unit, mnist, torch.device(unit.device))
    return {
        "unit": unit.name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "attempt": attempt,
        "threads": torch.get_num_threads(),
        "seconds": time.perf_counter() - started,
        "members": [
            {"run_dir": m.run_dir, "first_step": first, "model_sha256": _model_sha(m.run_dir)}
            for m, first in zip(unit.members, first_steps, strict=True)
        ],
    }


def _train_members(unit: WorkUnit, mnist: MNIST, device: Any) -> None:
    """Train the unfinished members of `unit` as one group, each resumed from its last
    checkpoint. A member folder held by another process (another study training the same
    model) is waited for, then reused if that process finished it."""
    with ExitStack() as locks:
        for member in unit.members:
            locks.enter_context(folder_lock(Path(member.run_dir), wait=True))
        todo = [(m.run_config(), Path(m.run_dir)) for m in unit.members]
        todo = [(cfg, run_dir) for cfg, run_dir in todo if not is_finished(run_dir, cfg)]
        if not todo:
            return
        images = torch.from_numpy(mnist.x_train).to(device)  # one uint8 copy for the group
        runs = [TrainingRun(cfg, compact_data(mnist, cfg, device, images), d) for cfg, d in todo]
        train_group(runs, resume=True)


def _model_sha(run_dir: str) -> str | None:
    try:
        return (RunFolder(run_dir).read_record() or {}).get("sha256")
    except (OSError, ValueError):
        return None


def _write_status(unit: WorkUnit, attempt: int) -> None:
    if unit.status_dir is None:
        return
    record = {"host": socket.gethostname(), "pid": os.getpid(), "attempt": attempt}
    fileio.write_json(Path(unit.status_dir) / f"{unit.name}.json", record | {"time": time.time()})
