"""Checkpoints and saved models: tensors in safetensors, everything else in JSON.

Nothing here unpickles. A checkpoint is the pair `epoch-NNNNNN.safetensors` +
`epoch-NNNNNN.json`; the JSON is written last and records the sha256 of the tensors, so a
checkpoint whose JSON exists and whose hash matches is complete, whatever was interrupted.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from vaelab import fileio
from vaelab.config import RunConfig, from_dict, to_dict
from vaelab.errors import VaelabError
from vaelab.models import AutoEncoder, build_model

CHECKPOINT_DIR = "checkpoints"
MILESTONE_DIR = "milestones"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
KEEP_CHECKPOINTS = 2


def generator_state(gen: torch.Generator) -> str:
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")


def set_generator_state(gen: torch.Generator, state: str) -> None:
    raw = torch.frombuffer(bytearray(base64.b64decode(state)), dtype=torch.uint8)
    gen.set_state(raw)


def save_checkpoint(
    run_dir: Path, epoch: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write checkpoint `epoch` (`model.*` and `optim.*` tensors) atomically and prune all
    but the newest KEEP_CHECKPOINTS."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    blob = save_tensors(tensors)
    stem = folder / f"epoch-{epoch:06d}"
    fileio.write_bytes(stem.with_suffix(".safetensors"), blob)
    record = {"epoch": epoch, "sha256": hashlib.sha256(blob).hexdigest(), **meta}
    fileio.write_json(stem.with_suffix(".json"), record)
    for old in sorted(folder.glob("epoch-*.json"))[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return stem.with_suffix(".json")


def latest_epoch(run_dir: Path) -> int:
    """The epoch of the newest checkpoint by name (0 if none); `latest_checkpoint` checks it."""
    records = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("epoch-*.json"))
    return int(records[-1].stem.removeprefix("epoch-")) if records else 0


def is_milestone(epoch: int, last: int) -> bool:
    """Epochs 1, 2, 4, 8, 16, ... and the last one."""
    return epoch == last or (epoch & (epoch - 1)) == 0


def save_milestone(
    run_dir: Path, epoch: int, state: dict[str, torch.Tensor], cfg: RunConfig
) -> None:
    """The model's weights at `epoch`, kept for good under milestones/ (never pruned)."""
    blob = save_tensors({k: v.detach().cpu().contiguous() for k, v in state.items()})
    stem = Path(run_dir) / MILESTONE_DIR / f"epoch-{epoch:06d}"
    fileio.write_bytes(stem.with_suffix(".safetensors"), blob)
    record = {"epoch": epoch, "sha256": hashlib.sha256(blob).hexdigest(), "config": to_dict(cfg)}
    fileio.write_json(stem.with_suffix(".json"), record)


def load_milestones(
    run_dir: Path, device: str | torch.device = "cpu", epochs: Iterable[int] | None = None
) -> dict[int, AutoEncoder]:
    """Every milestone of `run_dir` (or those of `epochs`) as {epoch: model in eval mode},
    oldest first; each checked against its recorded hash."""
    models = {}
    wanted = None if epochs is None else set(epochs)
    for path in sorted((Path(run_dir) / MILESTONE_DIR).glob("epoch-*.json")):
        if wanted is not None and int(path.stem.removeprefix("epoch-")) not in wanted:
            continue
        record = _read_json(path)
        blob = _read_bytes(path.with_suffix(".safetensors"))
        if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
            raise VaelabError(f"milestone {path.with_suffix('.safetensors')} is corrupt")
        model = build_model(from_dict(RunConfig, record["config"]).validate().model)
        model.load_state_dict(_parse_tensors(blob, path.with_suffix(".safetensors")))
        models[int(record["epoch"])] = model.to(device).eval()
    return models


def checkpoint_epochs(run_dir: Path) -> list[int]:
    """The epochs of the checkpoints `run_dir` holds, by name, oldest first."""
    records = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("epoch-*.json"))
    return [int(r.stem.removeprefix("epoch-")) for r in records]


def latest_checkpoint(
    run_dir: Path, at_most: int | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The newest complete checkpoint (its JSON record and tensors) of an epoch up to
    `at_most` (any, when None), or None if there is none.

    A checkpoint whose files are missing or do not match its recorded hash is an error,
    not something to skip silently: the user should know their run folder is damaged.
    """
    records = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("epoch-*.json"))
    if at_most is not None:
        records = [r for r in records if int(r.stem.removeprefix("epoch-")) <= at_most]
    if not records:
        return None
    path = records[-1]
    record = _read_json(path)
    blob = _read_bytes(path.with_suffix(".safetensors"))
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise VaelabError(
            f"checkpoint {path.with_suffix('.safetensors')} is corrupt (hash mismatch)"
        )
    return record, _parse_tensors(blob, path.with_suffix(".safetensors"))


def save_model(run_dir: Path, model: AutoEncoder, cfg: RunConfig, summary: dict[str, Any]) -> None:
    """The finished model: weights and a JSON record of its config and final numbers."""
    blob = save_tensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    fileio.write_bytes(Path(run_dir) / MODEL_FILE, blob)
    record = {"config": to_dict(cfg), "sha256": hashlib.sha256(blob).hexdigest(), **summary}
    fileio.write_json(Path(run_dir) / "model.json", record)


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise VaelabError(f"{run_dir} is not a vaelab run folder (no {CONFIG_FILE})")
    return from_dict(RunConfig, _read_json(path)).validate()


def load_model(
    run_dir: Path, device: str | torch.device = "cpu"
) -> tuple[AutoEncoder, dict[str, Any]]:
    """A finished model from `run_dir` in eval mode, and its record (config, summary)."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.json").exists():
        raise VaelabError(
            f"{run_dir} holds no finished model (train it, or resume it with --resume)"
        )
    record = _read_json(run_dir / "model.json")
    blob = _read_bytes(run_dir / MODEL_FILE)
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise VaelabError(f"{run_dir / MODEL_FILE} is corrupt (hash mismatch)")
    if "config" not in record:
        raise VaelabError(f"{run_dir / 'model.json'} holds no config (corrupt)")
    cfg = from_dict(RunConfig, record["config"]).validate()
    model = build_model(cfg.model)
    try:
        model.load_state_dict(_parse_tensors(blob, run_dir / MODEL_FILE))
    except RuntimeError as err:
        raise VaelabError(
            f"{run_dir / MODEL_FILE} does not fit its config: {err}".splitlines()[0]
        ) from None
    return model.to(device).eval(), record


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise VaelabError(f"cannot read {path}: {err.strerror}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VaelabError(f"{path} is not valid JSON (corrupt or truncated)") from None
    if not isinstance(data, dict):
        raise VaelabError(f"{path} does not hold a JSON object")
    return data


def _parse_tensors(blob: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_tensors(blob)
    except (SafetensorError, ValueError, RuntimeError):
        raise VaelabError(
            f"{path} is not a valid safetensors file (corrupt or truncated)"
        ) from None
