"""Every file name and layout of a run folder and of a study folder, in one place.

A run folder (one model):

    config.json            the run's settings (written when training starts)
    metrics.jsonl          one strict-JSON line per finished epoch (and the last, if partial)
    checkpoints/step-NNNNNNNNN.{safetensors,json}  the newest few, for resume
    milestones/step-NNNNNNNNN.{safetensors,json}   weights at steps 250, 500, 1000, ... and
                                                    the last
    model.safetensors, model.json                  the finished model and its record
    .vaelab.lock           the writer's lock (see `vaelab.core.lock`)

Folders written before training was counted in steps name their checkpoints and milestones
`epoch-NNNNNN` by the epoch they end; they still resume and read (epoch e is step
e * steps per epoch). Such a folder resumed now holds both: every step-named file came after
every epoch-named one.

A study folder:

    models/<run folder>/   one per model and seed
    classifier/<hash>/     the digit classifier that reads reconstructions and walks
    figures/               every figure of the report
    experiments.json, milestones.json   caches of the experiments' numbers
    results.json, report.html, explorer.html
    workers/<unit>.json    which process trains which unit
    tensorboard/           derived TensorBoard files

Every other module asks this one for these names. A writer that was killed mid-write leaves
a temporary file beside its target (`fileio.TEMP_SUFFIX`); `clear_temporaries` removes them,
called by whoever holds the folder's lock.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaelab.core import fileio

LOCK_FILE = ".vaelab.lock"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
MILESTONE_DIR = "milestones"
MODEL_FILE = "model.safetensors"
MODEL_RECORD = "model.json"
EPOCH_PREFIX = "epoch-"  # the files of folders from before steps
STEP_PREFIX = "step-"


def step_stem(step: int) -> str:
    return f"{STEP_PREFIX}{step:09d}"


def position(path: Path, steps_per_epoch: int) -> int:
    """The step a checkpoint or milestone file holds, by its name: `step-N` is step N,
    `epoch-N` (a folder from before steps) is step N * steps_per_epoch."""
    stem = Path(path).stem
    if stem.startswith(STEP_PREFIX):
        return int(stem.removeprefix(STEP_PREFIX))
    return int(stem.removeprefix(EPOCH_PREFIX)) * steps_per_epoch


def _order(path: Path) -> tuple[int, int]:
    """Oldest first without knowing the steps per epoch: every step-named file of a folder
    was written after every epoch-named one (by resuming from the newest of those)."""
    stem = path.stem
    if stem.startswith(STEP_PREFIX):
        return 1, int(stem.removeprefix(STEP_PREFIX))
    return 0, int(stem.removeprefix(EPOCH_PREFIX))


def _records(folder: Path) -> list[Path]:
    found = [*folder.glob(f"{EPOCH_PREFIX}*.json"), *folder.glob(f"{STEP_PREFIX}*.json")]
    return sorted((p for p in found if _is_numbered(p)), key=_order)


def _is_numbered(path: Path) -> bool:
    number = path.stem.removeprefix(STEP_PREFIX).removeprefix(EPOCH_PREFIX)
    return number.isdigit()


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder (nothing is read or created by making one)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def milestones(self) -> Path:
        return self.path / MILESTONE_DIR

    @property
    def weights(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def record(self) -> Path:
        return self.path / MODEL_RECORD

    def checkpoint(self, step: int) -> Path:
        """The checkpoint's JSON record; its tensors are `.with_suffix(".safetensors")`."""
        return self.checkpoints / f"{step_stem(step)}.json"

    def milestone(self, step: int) -> Path:
        return self.milestones / f"{step_stem(step)}.json"

    def checkpoint_records(self) -> list[Path]:
        """The checkpoints' JSON records by name, oldest first (unchecked)."""
        return _records(self.checkpoints)

    def milestone_records(self) -> list[Path]:
        return _records(self.milestones)

    def checkpoint_steps(self, steps_per_epoch: int) -> list[int]:
        return [position(p, steps_per_epoch) for p in self.checkpoint_records()]

    def latest_step(self, steps_per_epoch: int) -> int:
        """The step of the newest checkpoint by name (0 if none), without reading it."""
        steps = self.checkpoint_steps(steps_per_epoch)
        return steps[-1] if steps else 0

    def is_run(self) -> bool:
        return self.config.exists()

    def has_model(self) -> bool:
        return self.record.exists()

    def read_record(self) -> dict[str, Any] | None:
        """The finished model's record (config, sha256, summary), or None if unreadable."""
        try:
            record = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch log; a torn last line (from a kill mid-write) is ignored."""
        try:
            lines = self.metrics.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def append_metrics(self, row: dict[str, Any]) -> None:
        fileio.append_line(self.metrics, fileio.json_line(row))

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        fileio.write_text(self.metrics, "".join(fileio.json_line(r) + "\n" for r in rows))

    def holds_only_lock(self) -> bool:
        """True if the folder is missing or holds nothing but a lock file."""
        return not self.path.exists() or all(p.name == LOCK_FILE for p in self.path.iterdir())

    def clear_temporaries(self) -> list[Path]:
        """Remove what killed writers left behind here; call it holding the folder's lock."""
        return clear_temporaries(self.path, self.checkpoints, self.milestones)


MODELS_DIR = "models"
CLASSIFIER_DIR = "classifier"
FIGURE_DIR = "figures"
EXPERIMENT_CACHE = "experiments.json"
MILESTONE_CACHE = "milestones.json"
VARIANT_CACHE = "variants.json"
CLASSIFIER_WEIGHTS = "classifier.safetensors"  # in each classifier's own folder
CLASSIFIER_PARAMS = "classifier.json"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
EXPLORER_FILE = "explorer.html"
WORKERS_DIR = "workers"
TENSORBOARD_DIR = "tensorboard"


@dataclass(frozen=True)
class StudyFolder:
    """The files of one study folder."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.path / MODELS_DIR / name)

    def runs(self) -> list[RunFolder]:
        """Every run folder that holds a config, by name."""
        return [RunFolder(p.parent) for p in sorted(self.models.glob(f"*/{CONFIG_FILE}"))]

    def finished_runs(self) -> list[RunFolder]:
        return [RunFolder(p.parent) for p in sorted(self.models.glob(f"*/{MODEL_RECORD}"))]

    def __getattr__(self, name: str) -> Path:  # models, figures, results, ...: see _NAMES
        if name in _NAMES:
            return self.path / _NAMES[name]
        raise AttributeError(name)

    def clear_temporaries(self) -> list[Path]:
        """Remove what killed writers left in the study's own files (not in run folders,
        which their trainers clear); call it holding the study folder's lock."""
        classifiers = [p for p in (self.path / CLASSIFIER_DIR).glob("*") if p.is_dir()]
        return clear_temporaries(self.path, self.figures, *classifiers)


_NAMES = {
    "models": MODELS_DIR,
    "classifiers": CLASSIFIER_DIR,
    "figures": FIGURE_DIR,
    "experiment_cache": EXPERIMENT_CACHE,
    "milestone_cache": MILESTONE_CACHE,
    "variant_cache": VARIANT_CACHE,
    "results": RESULTS_FILE,
    "report": REPORT_FILE,
    "explorer": EXPLORER_FILE,
    "workers": WORKERS_DIR,
    "tensorboard": TENSORBOARD_DIR,
}


def is_run_folder(path: Path) -> bool:
    return RunFolder(path).is_run()


def clear_temporaries(*folders: Path) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes directly in `folders` (not in
    their subfolders); returns what was removed."""
    removed = []
    for folder in folders:
        for path in sorted(Path(folder).glob(f".*{fileio.TEMP_SUFFIX}")):
            if path.is_file() and fileio.is_temporary(path):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def row_step(row: dict[str, Any], steps_per_epoch: int) -> int:
    """The step a metrics row was logged at (a row from before steps: its epoch's end)."""
    step = row.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    epoch = row.get("epoch", 0)
    return epoch * steps_per_epoch if isinstance(epoch, int) else 0


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """A run folder's per-epoch log (see `RunFolder.read_metrics`)."""
    return RunFolder(run_dir).read_metrics()
