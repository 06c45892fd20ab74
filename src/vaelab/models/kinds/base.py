"""What the rest of vaelab asks of a model kind, as one record (`KindRecord`).

A record holds plain facts and three functions; building its module imports torch, so a
record's `build` imports its module when called, and reading the registry stays cheap (the
CLI lists the kinds at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaelab.core.config import ModelConfig

# The reconstruction experiment's modes of each role, in the order its tables list them: the
# article's AE, VAE and CVAE (with no label, the true label, a wrong label), and M2 (a label
# inferred by q(y|x), or the true one).
ROLE_MODES = {
    "ae": ("",),
    "vae": ("",),
    "cvae": (" (no label)", " (true label)", " (wrong label)"),
    "m2": (" (inferred label)", " (true label)"),
}


@dataclass(frozen=True)
class KindRecord:
    name: str  # "vae", "conv-vae": config, CLI, run names, results keys
    help: str  # one line: the --model choices, docs/settings.md
    family: str  # "mlp", "conv": models of one family share their architecture's settings
    role: str  # the article's model it plays: "ae", "vae", "cvae" or "m2"
    variational: bool  # a Gaussian posterior (mu, ln_var) rather than one code
    labels: bool  # the encoder and decoder see a label (-1: none)
    classifier: bool  # carries q(y|x)
    ignores: Mapping[str, tuple[str, ...]]  # settings it never reads, by section: not identity
    build: Callable[[ModelConfig], Any]  # its module, freshly initialised
    fused: Callable[[ModelConfig], bool]  # the hand-written stacked step serves this cfg
    describe: Callable[[ModelConfig], str]  # the architecture in words, for the report
    export: Callable[[Any], dict[str, Any]] | None = None  # the explorer's decoder, or none

    @property
    def modes(self) -> tuple[str, ...]:
        """Its rows in the reconstruction experiment: "vae", "cvae (no label)", ..."""
        return tuple(self.name + suffix for suffix in ROLE_MODES[self.role])


def never(cfg: ModelConfig) -> bool:
    """`fused` of a kind the hand-written stacked step never serves."""
    return False
