"""The registry of model kinds: one record each (`KindRecord`), a family a module.

Everything that depends on the kind of a model (the config's choices, the CLI, run identity,
the data's labels, the training step, the experiments' modes, the report's description, the
explorer's export) reads it from here. Registering a family is one line in `RECORDS`.

Importing this package imports no torch: a record imports its module when it builds one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vaelab.core.config import StudyConfig
from vaelab.core.errors import VaelabError
from vaelab.models.kinds import conv, mlp
from vaelab.models.kinds.base import KindRecord

if TYPE_CHECKING:
    from vaelab.core.config import DataConfig, ModelConfig, RunConfig

RECORDS: tuple[KindRecord, ...] = (*mlp.RECORDS, *conv.RECORDS)
_BY_NAME = {r.name: r for r in RECORDS}

__all__ = [
    "RECORDS",
    "KindRecord",
    "build_model",
    "check",
    "check_labels",
    "check_settings",
    "names",
    "record",
    "title_of",
]


def names() -> tuple[str, ...]:
    """Every registered kind, in the registry's order (tables and reports list them so)."""
    return tuple(_BY_NAME)


def record(name: str) -> KindRecord:
    """The record of kind `name`; an unknown name is one clear line."""
    if name not in _BY_NAME:
        raise VaelabError(f"unknown model {name!r}: choose one of {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def title_of(name: str) -> str | None:
    """The name a figure or the page gives a model or label mode: "cvae (no label)" ->
    "CVAE (no label)", "conv-vae" -> "conv VAE"; None when its first word names no kind."""
    kind, _, mode = name.strip().partition(" ")
    found = _BY_NAME.get(kind.lower())
    return None if found is None else f"{found.title} {mode}".strip()


def check(kinds: Iterable[str]) -> None:
    """Every name in `kinds` is a registered kind (else one clear line)."""
    for name in kinds:
        record(name)


def check_labels(kind: str, data: DataConfig, train_images: int | None = None) -> None:
    """One clear line where a validation split leaves a kind that reads labels fewer training
    images than the labelled ones it asks for (`data.n_labelled`; without a validation split
    every image it can have is labelled). `train_images`: the training images left once the
    data are loaded; None: as many as the settings leave of MNIST's 60,000."""
    if not (record(kind).labels and data.validation):
        return
    left = data.train_images() if train_images is None else train_images
    if left < data.n_labelled:
        raise VaelabError(
            f"data.validation ({data.validation}) leaves {left} training images, fewer than "
            f"the {data.n_labelled} labelled images asked for (data.n_labelled)"
        )


def check_settings(cfg: StudyConfig | RunConfig) -> Any:
    """`cfg` (a study's or a run's settings) once every kind it names is registered and the
    data settings leave each what it needs (`check_labels`): the settings' gate, where what
    the core settings cannot know about the kinds is checked."""
    if isinstance(cfg, StudyConfig):
        check(cfg.models)
        if not cfg.label_counts:  # (the semi-supervised study sets n_labelled per run)
            for kind in cfg.models:
                check_labels(kind, cfg.data)
    else:
        check((cfg.model.kind,))
        check_labels(cfg.model.kind, cfg.data)
    return cfg


def build_model(cfg: ModelConfig) -> Any:
    """The model `cfg.kind` names, freshly initialised (seed torch beforehand for repeatability)."""
    return record(cfg.kind).build(cfg)
