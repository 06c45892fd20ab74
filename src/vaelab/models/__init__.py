"""The networks (`networks`, described once in `spec`), their losses and the digit classifier.

The names users import from `vaelab.models` are here."""

from vaelab.models.networks import (
    CVAE,
    VAE,
    AutoEncoder,
    Posterior,
    build_model,
    count_parameters,
)
from vaelab.models.spec import MODEL_KINDS

__all__ = [
    "CVAE",
    "MODEL_KINDS",
    "VAE",
    "AutoEncoder",
    "Posterior",
    "build_model",
    "count_parameters",
]
