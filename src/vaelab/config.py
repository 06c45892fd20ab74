"""The settings, where users import them from: `from vaelab.config import RunConfig, ...`.

They are defined in `vaelab.core.config`; this module is the public name for them."""

from vaelab.core.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    RunConfig,
    StudyConfig,
    TrainConfig,
    load_preset,
    load_toml,
)

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
