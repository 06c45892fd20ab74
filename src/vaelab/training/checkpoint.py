"""Checkpoints and saved models: tensors in safetensors, everything else in JSON.

Nothing here unpickles. A checkpoint is the pair `step-NNNNNNNNN.safetensors` +
`step-NNNNNNNNN.json`; the JSON is written last and records the sha256 of the tensors, so a
checkpoint whose JSON exists and whose hash matches is complete, whatever was interrupted.
Checkpoints and milestones of folders from before steps (`epoch-NNNNNN`, recording only
their epoch) read as step epoch * steps per epoch.
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

from vaelab.core import fileio
from vaelab.core.config import RunConfig, saved_run_config, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, position
from vaelab.core.util import first_line
from vaelab.models.kinds import build_model
from vaelab.models.networks import AutoEncoder

KEEP_CHECKPOINTS = 2


def generator_state(gen: torch.Generator) -> str:
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")


def set_generator_state(gen: torch.Generator, state: str) -> None:
    raw = torch.frombuffer(bytearray(base64.b64decode(state)), dtype=torch.uint8)
    gen.set_state(raw)


def order_state(batch: torch.Generator, labelled: torch.Generator | None = None) -> dict[str, str]:
    """The generators that draw an epoch's order (the batch order, M2's labelled images)."""
    state = {"batch": generator_state(batch)}
    if labelled is not None:
        state["labelled"] = generator_state(labelled)
    return state


def rng_state(
    batch: torch.Generator,
    noise: torch.Generator,
    *,
    pixels: torch.Generator | None = None,
    labelled: torch.Generator | None = None,
    epoch_start: dict[str, str] | None = None,
) -> dict[str, str]:
    """One member's generators as its checkpoint records them. In mid-epoch, `epoch_start`
    (`order_state` as the epoch began) replaces the order's generators: the resumed run draws
    the epoch's order again and goes on from the steps done."""
    state = order_state(batch, labelled) | (epoch_start or {})
    state["noise"] = generator_state(noise)
    if pixels is not None:
        state["pixels"] = generator_state(pixels)
    return state


def restore_rng(
    state: dict[str, str],
    batch: torch.Generator,
    noise: torch.Generator,
    *,
    pixels: torch.Generator | None = None,
    labelled: torch.Generator | None = None,
) -> None:
    """Set one member's generators to a checkpoint's `rng_state`."""
    set_generator_state(batch, state["batch"])
    set_generator_state(noise, state["noise"])
    if pixels is not None:
        set_generator_state(pixels, state["pixels"])
    if labelled is not None:
        set_generator_state(labelled, state["labelled"])


Moments = dict[str, list[torch.Tensor]]  # Adam's "exp_avg", "exp_avg_sq": one per weight


def member_tensors(
    weights: dict[str, torch.Tensor], moments: Moments, count: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One member's checkpoint tensors under their names: `model.<weight>`, and for Adam
    `optim.<i>.<moment>` and `optim.<i>.step` for its i-th weight (in `weights`' order), as
    `torch.optim.Adam`'s state dict numbers them."""
    tensors = {f"model.{k}": v for k, v in weights.items()}
    for name, views in moments.items():
        for i, view in enumerate(views):
            tensors[f"optim.{i}.{name}"] = view
            tensors[f"optim.{i}.step"] = count
    return tensors


def load_member_tensors(
    tensors: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], moments: Moments
) -> torch.Tensor:
    """Copy a checkpoint's `member_tensors` into the member's views of the weights and of
    Adam's moments, each shape checked (a ValueError names the first that does not fit);
    returns Adam's step count."""
    targets = {f"model.{k}": v for k, v in weights.items()}
    for name, views in moments.items():
        targets |= {f"optim.{i}.{name}": v for i, v in enumerate(views)}
    for key, view in targets.items():
        if tensors[key].shape != view.shape:
            raise ValueError(f"{key} has shape {tuple(tensors[key].shape)}")
        view.copy_(tensors[key])
    return tensors["optim.0.step"]


def save_checkpoint(
    run_dir: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write the checkpoint of step `step` (`model.*` and `optim.*` tensors) atomically and
    prune all but the newest KEEP_CHECKPOINTS."""
    folder = RunFolder(run_dir)
    blob = save_tensors(tensors)
    stem = folder.checkpoint(step)
    fileio.write_bytes(stem.with_suffix(".safetensors"), blob)
    record = {"step": step, "sha256": hashlib.sha256(blob).hexdigest(), **meta}
    fileio.write_json(stem, record)
    for old in folder.checkpoint_records()[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return stem.with_suffix(".json")


MILESTONE_FIRST = 250  # steps: the first milestone, below the article's 1000


def is_milestone(step: int, last: int) -> bool:
    """Steps 250, 500, 1000, 2000, ... (250 * 2^k) and the last one."""
    if step == last:
        return True
    ratio, rest = divmod(step, MILESTONE_FIRST)
    return rest == 0 and ratio >= 1 and (ratio & (ratio - 1)) == 0


def save_milestone(
    run_dir: Path,
    step: int,
    state: dict[str, torch.Tensor],
    cfg: RunConfig,
    steps_per_epoch: int,
) -> None:
    """The model's weights at step `step`, kept for good under milestones/ (never pruned)."""
    blob = save_tensors({k: v.detach().cpu().contiguous() for k, v in state.items()})
    stem = RunFolder(run_dir).milestone(step)
    fileio.write_bytes(stem.with_suffix(".safetensors"), blob)
    record = {
        "step": step,
        "steps_per_epoch": steps_per_epoch,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "config": to_dict(cfg),
    }
    fileio.write_json(stem, record)


def record_step(record: dict[str, Any], steps_per_epoch: int) -> int:
    """The step a checkpoint or milestone record holds (an epoch-only record: its epoch's
    last step)."""
    if "step" in record:
        return int(record["step"])
    return int(record["epoch"]) * steps_per_epoch


def load_milestones(
    run_dir: Path,
    device: str | torch.device = "cpu",
    steps: Iterable[int] | None = None,
    *,
    steps_per_epoch: int,
) -> dict[int, AutoEncoder]:
    """Every milestone of `run_dir` (or those of `steps`) as {step: model in eval mode},
    oldest first; each checked against its recorded hash."""
    models = {}
    wanted = None if steps is None else set(steps)
    for path in RunFolder(run_dir).milestone_records():
        if wanted is not None and position(path, steps_per_epoch) not in wanted:
            continue
        record = _read_json(path)
        blob = _read_bytes(path.with_suffix(".safetensors"))
        if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
            raise VaelabError(f"milestone {path.with_suffix('.safetensors')} is corrupt")
        model = build_model(saved_run_config(record["config"]).model)
        model.load_state_dict(_parse_tensors(blob, path.with_suffix(".safetensors")))
        models[position(path, steps_per_epoch)] = model.to(device).eval()
    return models


def latest_checkpoint(
    run_dir: Path, at_most: int | None = None, steps_per_epoch: int = 1
) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The newest complete checkpoint (its JSON record and tensors) of a step up to
    `at_most` (any, when None), or None if there is none.

    A checkpoint whose files are missing or do not match its recorded hash is an error,
    not something to skip silently: the user should know their run folder is damaged.
    """
    records = RunFolder(run_dir).checkpoint_records()
    if at_most is not None:
        records = [r for r in records if position(r, steps_per_epoch) <= at_most]
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
    folder = RunFolder(run_dir)
    fileio.write_bytes(folder.weights, blob)
    record = {"config": to_dict(cfg), "sha256": hashlib.sha256(blob).hexdigest(), **summary}
    fileio.write_json(folder.record, record)


def read_run_config(run_dir: Path) -> RunConfig:
    path = RunFolder(run_dir).config
    if not path.exists():
        raise VaelabError(f"{run_dir} is not a vaelab run folder (no {path.name})")
    return saved_run_config(_read_json(path))


def load_model(
    run_dir: Path, device: str | torch.device = "cpu"
) -> tuple[AutoEncoder, dict[str, Any]]:
    """A finished model from `run_dir` in eval mode, and its record (config, summary)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.has_model():
        raise VaelabError(
            f"{run_dir} holds no finished model (train it, or resume it with --resume)"
        )
    record = _read_json(folder.record)
    blob = _read_bytes(folder.weights)
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise VaelabError(f"{folder.weights} is corrupt (hash mismatch)")
    if "config" not in record:
        raise VaelabError(f"{folder.record} holds no config (corrupt)")
    cfg = saved_run_config(record["config"])
    model = build_model(cfg.model)
    try:
        model.load_state_dict(_parse_tensors(blob, folder.weights))
    except RuntimeError as err:
        raise VaelabError(f"{folder.weights} does not fit its config: {first_line(err)}") from None
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
