"""The networks (`networks`, described once in `spec`; the registry of kinds in `kinds`), their
losses and the digit classifier.

The names users import from `vaelab.models` are here, loaded when first asked for: importing
the registry of kinds (`vaelab.models.kinds`) must not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "CVAE": "networks",
    "VAE": "networks",
    "AutoEncoder": "networks",
    "Posterior": "networks",
    "count_parameters": "networks",
    "build_model": "kinds",
}

__all__ = [
    "CVAE",
    "MODEL_KINDS",
    "VAE",
    "AutoEncoder",
    "Posterior",
    "build_model",
    "count_parameters",
]


def __getattr__(name: str) -> Any:
    if name == "MODEL_KINDS":
        return import_module("vaelab.models.kinds").names()
    if name in _HOMES:
        return getattr(import_module(f"vaelab.models.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
