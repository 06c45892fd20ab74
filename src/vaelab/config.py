"""The settings, where users import them from: `from vaelab.config import RunConfig, ...`.

They are defined in `vaelab.core.config`; this module is the public name for them. Loading
settings here also checks that every model kind they name is registered (`vaelab.models.kinds`)
and gets what it needs of the data settings, which the core settings cannot know."""

from pathlib import Path
from typing import Any

from vaelab.core import config
from vaelab.core.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    RunConfig,
    StudyConfig,
    TrainConfig,
)
from vaelab.models import kinds


def load_toml(path: str | Path, cls: type = StudyConfig) -> Any:
    """`vaelab.core.config.load_toml`, with its model kinds checked."""
    return checked(config.load_toml(path, cls))


def load_preset(name_or_path: str) -> StudyConfig:
    """`vaelab.core.config.load_preset`, with its model kinds checked."""
    return checked(config.load_preset(name_or_path))


def checked(cfg: Any) -> Any:
    """`cfg` (a study's or a run's settings) once every kind it names is registered and the
    data settings leave each what it needs (`kinds.check_settings`)."""
    return kinds.check_settings(cfg)


__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "RunConfig",
    "StudyConfig",
    "TrainConfig",
    "load_preset",
    "load_toml",
]
