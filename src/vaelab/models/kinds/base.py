"""What the rest of vaelab asks of a model kind, as one record (`KindRecord`).

A record holds plain facts and three functions; building its module imports torch, so a
record's `build` imports its module when called, and reading the registry stays cheap (the
CLI lists the kinds at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaelab.models.spec import Traits

if TYPE_CHECKING:
    from vaelab.core.config import ModelConfig

NO_LABEL, TRUE_LABEL, WRONG_LABEL = "no label", "true label", "wrong label"
INFERRED_LABEL = "inferred label"  # M2 given no label reads one with q(y|x)


@dataclass(frozen=True)
class Mode:
    """A model read one way in the experiments: its kind, and the label it is given ("": a
    kind that reads none). Named "cvae (no label)" in tables and results."""

    kind: str
    given: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind} ({self.given})" if self.given else self.kind

    def __str__(self) -> str:
        return self.name


# The reconstruction experiment's modes of each role, in the order its tables list them: the
# article's AE, VAE and CVAE (with no label, the true label, a wrong label), and M2 (a label
# inferred by q(y|x), or the true one).
ROLE_MODES = {
    "ae": ("",),
    "vae": ("",),
    "cvae": (NO_LABEL, TRUE_LABEL, WRONG_LABEL),
    "m2": (INFERRED_LABEL, TRUE_LABEL),
}


@dataclass(frozen=True)
class KindRecord:
    name: str  # "vae", "conv-vae": config, CLI, run names, results keys
    title: str  # its name in figures and on the page: "VAE", "conv VAE"
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
    def traits(self) -> Traits:
        """What its networks hold, as the layer description reads it (`models.spec`)."""
        return Traits(self.variational, self.labels, self.classifier)

    @property
    def modes(self) -> tuple[Mode, ...]:
        """Its rows in the reconstruction experiment: "vae", "cvae (no label)", ..."""
        return tuple(Mode(self.name, given) for given in ROLE_MODES[self.role])


def never(cfg: ModelConfig) -> bool:
    """`fused` of a kind the hand-written stacked step never serves."""
    return False
