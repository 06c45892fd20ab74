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

from vaelab.core.config import KINDS
from vaelab.core.errors import VaelabError
from vaelab.core.folders import LOCK_FILE, RunFolder, StudyFolder
from vaelab.core.util import format_duration
from vaelab.execution.progress import read_progress


@dataclass(frozen=True)
class RunStatus:
    name: str  # e.g. "vae z=16 s0"
    epochs_done: int
    epochs: int
    train_loss: float | None
    test_loss: float | None
    seconds_left: float | None  # at the measured seconds per epoch
    state: str  # "finished", "training (pid N)", "stopped" or "not started"


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
        return (len(KINDS) + 1, 0, 0, Path(run_dir).name)
    rank = KINDS.index(kind) if kind in KINDS else len(KINDS)
    return (rank, z, seed, Path(run_dir).name)


def run_status(run_dir: Path) -> RunStatus:
    try:
        cfg = json.loads(RunFolder(run_dir).config.read_text())
        kind, z = cfg["model"]["kind"], cfg["model"]["latent"]
        epochs, seed = int(cfg["train"]["epochs"]), cfg["train"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        raise VaelabError(f"{RunFolder(run_dir).config} is not a vaelab run config") from None
    done, seconds, last = read_progress(run_dir)
    tests = [r for r in RunFolder(run_dir).read_metrics() if _is_number(r.get("test_loss"))]
    holder = holder_pid(run_dir)
    if RunFolder(run_dir).has_model() and done >= epochs:
        state = "finished"
    elif holder is not None:
        state = f"training (pid {holder})"
    else:
        state = "stopped" if done else "not started"
    return RunStatus(
        name=f"{kind} z={z} s{seed}",
        epochs_done=done,
        epochs=epochs,
        train_loss=last.get("loss") if isinstance(last.get("loss"), int | float) else None,
        test_loss=tests[-1]["test_loss"] if tests else None,
        seconds_left=None if seconds is None else (epochs - done) * seconds,
        state=state,
    )


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
    """A plain table that fits in 80 columns."""
    lines = [f"{'model':<16} {'epochs':>11} {'train':>8} {'test':>8} {'left':>7}  state"]
    for r in rows:
        lines.append(
            f"{r.name:<16} {f'{r.epochs_done}/{r.epochs}':>11} {_num(r.train_loss):>8} "
            f"{_num(r.test_loss):>8} {format_duration(r.seconds_left):>7}  {r.state}"
        )
    done = sum(r.state == "finished" for r in rows)
    lines.append(f"{done} of {len(rows)} models finished")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def study_status(folder: Path) -> str:
    """The table for a study or run folder, with who holds the study folder itself."""
    rows = [run_status(d) for d in sorted(run_dirs(folder), key=run_order)]
    text = format_table(rows)
    holder = holder_pid(folder) if not RunFolder(folder).is_run() else None
    if holder is not None:
        text = f"{folder} is in use by process {holder}\n" + text
    return text
