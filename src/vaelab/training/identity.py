"""A run's identity: the settings that change its numbers, and whether a folder holds them.

A run folder is reused when it holds a finished model trained with the same identity, and
resumed only with it; everything else (where and how often it saves, where it runs, where its
data was read from) is bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vaelab.core.config import ARTICLE_STEPS, RunConfig, to_dict, upgrade_saved
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder
from vaelab.core.util import json_digest
from vaelab.models import kinds
from vaelab.training import checkpoint


def is_finished(run_dir: Path, cfg: RunConfig) -> bool:
    """True if `run_dir` holds a finished model trained with exactly `cfg`'s settings."""
    record = RunFolder(run_dir).read_record()
    if record is None or not isinstance(record.get("config"), dict):
        return False
    return identity(record["config"]) == identity(to_dict(cfg))


def run_name(cfg: RunConfig) -> str:
    """<kind>-z<latent>-s<seed>-<hash of the settings that change the numbers>: a study's
    folder name for the run, the same for the same identity wherever it is computed."""
    m = cfg.model
    return f"{m.kind}-z{m.latent}-s{cfg.train.seed}-{json_digest(identity(to_dict(cfg)), 10)}"


# Settings that change no number of a run: where and how often it saves, where it runs, where
# its data was read from (the data's content is `data.sha256`, which is kept).
_BOOKKEEPING = {
    "train": ("checkpoint_every", "eval_every", "device"),
    "data": ("path", "source"),
}


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings that change a run's numbers: all but bookkeeping and what its kind ignores.

    The data enters through its content fingerprint `data.sha256`, never through its path.
    """
    cfg = upgrade_saved(cfg)
    name = cfg["model"]["kind"]
    known = name in kinds.names()  # a kind no longer registered (an old folder): all kept
    unused = kinds.record(name).ignores if known else {}
    kept = {}
    for section in ("model", "train", "data"):
        drop = unused.get(section, ()) + _BOOKKEEPING.get(section, ())
        kept[section] = {k: v for k, v in cfg[section].items() if k not in drop}
    kept["data"].setdefault("sha256", None)
    _length(kept["train"])
    for section, key, default in _NEW_DEFAULTS:  # at their defaults, runs keep their names
        if kept[section].get(key, default) == default:
            kept[section].pop(key, None)
    if not known or kinds.record(name).role != "ae":  # only the AE reads it
        kept["train"].pop("ae_loss", None)
    hidden = kept["model"].get("hidden")
    if isinstance(hidden, list) and len(hidden) == 1:  # one layer: written as before, a number
        kept["model"]["hidden"] = hidden[0]
    if kept["model"].get("label_at") == "input":  # no label embedding: its width is unused
        kept["model"].pop("embed", None)
    return kept


# Settings added after run names were first kept: left out at their defaults.
_NEW_DEFAULTS = (
    ("data", "binarize", "none"),
    ("data", "validation", 0),
    ("model", "activation", "tanh"),
    ("model", "label_at", "hidden"),
    ("train", "optimizer", "adam"),
    ("train", "ae_loss", "bernoulli"),
)


def _length(train: dict[str, Any]) -> None:
    """The training length as one entry: `steps` where given, else `epochs` (as runs were
    named before steps existed); neither given means the article's 1000 steps."""
    if train.get("steps") is None and train.get("epochs") is None:
        train["steps"] = ARTICLE_STEPS
    if train.get("steps") is not None:
        train.pop("epochs", None)
    else:
        train.pop("steps", None)


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`section.name: old -> new` for every setting of two identities that differs."""
    found = []
    for section in old.keys() | new.keys():
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                found.append(f"{section}.{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    return sorted(found)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text[:15] + '..."' if isinstance(value, str) and len(value) > 20 else text


class RunFolderError(VaelabError):
    """A run folder that cannot be used as asked; `reason` says why in library words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "not a run", "holds a run" or "other settings"


def check_run_folder(run_dir: Path, cfg: RunConfig, resume: bool) -> None:
    """Raise RunFolderError unless `cfg` may train into `run_dir` (`resume`: go on there)."""
    folder = RunFolder(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a folder", "not a run")
    if not folder.is_run():
        if not folder.holds_only_lock():
            raise RunFolderError(
                f"{run_dir} exists and is not a vaelab run folder; train into another folder",
                "not a run",
            )
        return
    if not resume:
        raise RunFolderError(
            f"{run_dir} already holds a run; resume it (resume=True) or train into another folder",
            "holds a run",
        )
    saved = checkpoint.read_run_config(run_dir)
    old, new = identity(to_dict(saved)), identity(to_dict(cfg))
    for train in (old["train"], new["train"]):  # a run may go on for longer
        train.pop("epochs", None)
        train.pop("steps", None)
    if old["data"]["sha256"] is None:  # a run from before fingerprints: its data is unknown
        old["data"]["sha256"] = new["data"]["sha256"]
    if old != new:
        raise RunFolderError(
            f"{run_dir} was trained with other settings ({'; '.join(differences(old, new))}); "
            "resume it with the saved ones",
            "other settings",
        )
