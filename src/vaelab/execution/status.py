"""`vaelab status`: where a running or interrupted study or run stands, read from its files.

It only reads: no lock is taken, so it can watch a folder that a study is training into.
Whether a folder is held comes from its lock file: the kernel's table of file locks
(/proc/locks) when there is one, else whether the pid written in the lock file is alive.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vaelab.core.config import RunConfig, saved_run_config
from vaelab.core.errors import VaelabError
from vaelab.core.folders import LOCK_FILE, RunFolder, StudyFolder
from vaelab.core.util import format_duration
from vaelab.execution.progress import read_progress, run_length
from vaelab.models import kinds


@dataclass(frozen=True)
class RunStatus:
    name: str  # e.g. "vae z=16 s0"
    steps_done: int
    steps: int
    steps_per_epoch: int
    train_loss: float | None
    test_loss: float | None
    seconds_left: float | None  # at the measured seconds per step
    state: str  # "finished", "training (pid N)", "stopped" or "not started"

    @property
    def epochs_done(self) -> float:
        return self.steps_done / self.steps_per_epoch


def run_dirs(folder: Path) -> list[Path]:
    """The run folders of a study folder, or the run folder itself."""
    folder = Path(folder)
    if RunFolder(folder).is_run():
        return [folder]
    study = StudyFolder(folder)
    runs = [r.path for r in study.runs()]
    if not runs and not study.models.is_dir():
        raise VaelabError(f"{folder} is neither a vaelab run folder nor a study folder")
    return runs


def run_order(run_dir: Path) -> tuple[int, int, int, str]:
    """How runs sort: by model kind in the study's order, then by z and seed as numbers
    (z = 16 after z = 2), then by folder name; a folder without a readable config last."""
    try:
        cfg = json.loads(RunFolder(run_dir).config.read_text())
        kind, z, seed = cfg["model"]["kind"], int(cfg["model"]["latent"]), int(cfg["train"]["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return (len(kinds.names()) + 1, 0, 0, Path(run_dir).name)
    order = kinds.names()
    rank = order.index(kind) if kind in order else len(order)
    return (rank, z, seed, Path(run_dir).name)


def run_status(run_dir: Path) -> RunStatus:
    """A run's steps done of its steps in all, last losses and state."""
    try:
        raw = json.loads(RunFolder(run_dir).config.read_text())
        kind, z, seed = raw["model"]["kind"], raw["model"]["latent"], raw["train"]["seed"]
        cfg = saved_run_config(raw)
    except (OSError, ValueError, KeyError, TypeError, VaelabError):
        raise VaelabError(f"{RunFolder(run_dir).config} is not a vaelab run config") from None
    rows = RunFolder(run_dir).read_metrics()
    per = _steps_per_epoch(cfg, rows)
    t = cfg.train
    steps = t.epochs * per if t.epochs is not None else t.total_steps(1)
    done, seconds, last = read_progress(run_dir, per)
    tests = [r for r in rows if _is_number(r.get("test_loss"))]
    holder = holder_pid(run_dir)
    if RunFolder(run_dir).has_model() and done >= steps:
        state = "finished"
    elif holder is not None:
        state = f"training (pid {holder})"
    else:
        state = "stopped" if done else "not started"
    return RunStatus(
        name=f"{kind} z={z} s{seed}",
        steps_done=done,
        steps=steps,
        steps_per_epoch=per,
        train_loss=last.get("loss") if isinstance(last.get("loss"), int | float) else None,
        test_loss=tests[-1]["test_loss"] if tests else None,
        seconds_left=None if seconds is None else (steps - done) * seconds,
        state=state,
    )


def _steps_per_epoch(cfg: RunConfig, rows: list[dict]) -> int:
    """From the log where it tells (the first epoch's row, whole unless a run in steps ended
    within it), else counted on the run's data.train_size or MNIST's 60,000 images."""
    first = rows[0] if rows else {}
    whole = cfg.train.epochs is not None or len(rows) > 1
    if _is_number(first.get("step")) and first.get("epoch") == 1 and whole and first["step"] > 0:
        return int(first["step"])
    return run_length(cfg)[1]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def holder_pid(folder: Path) -> int | None:
    """The pid holding `folder`'s lock, or None when nobody does. Takes no lock itself."""
    path = Path(folder) / LOCK_FILE
    try:
        text = path.read_text().strip()
        inode = path.stat().st_ino
    except OSError:
        return None
    pid = int(text.split()[0]) if text[:1].isdigit() else None
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return pid if pid is not None and _alive(pid) else None
    for line in table.splitlines():
        fields = line.split()  # 1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def format_table(rows: list[RunStatus]) -> str:
    """A plain table that fits in 80 columns: steps done of all, and the epochs they make."""
    head = f"{'model':<16} {'steps':>13} {'epochs':>6} {'train':>8} {'test':>8} {'left':>7}  state"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:<16} {f'{r.steps_done}/{r.steps}':>13} {r.epochs_done:>6.3g} "
            f"{_num(r.train_loss):>8} {_num(r.test_loss):>8} "
            f"{format_duration(r.seconds_left):>7}  {r.state}"
        )
    done = sum(r.state == "finished" for r in rows)
    lines.append(f"{done} of {len(rows)} models finished")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def study_status(folder: Path) -> str:
    """The table for a study or run folder, with who holds the study folder itself."""
    rows = [run_status(d) for d in sorted(run_dirs(folder), key=run_order)]
    text = format_table(rows)
    holder = holder_pid(folder) if not RunFolder(folder).is_run() else None
    if holder is not None:
        text = f"{folder} is in use by process {holder}\n" + text
    return text
