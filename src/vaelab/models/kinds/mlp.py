"""The article's models and Kingma et al.'s M2: dense encoders and decoders whose layers
`vaelab.models.spec` describes, built by `vaelab.models.networks`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vaelab.models.kinds.base import KindRecord, never

if TYPE_CHECKING:
    from vaelab.core.config import ModelConfig

# Settings a label-free kind never reads (so they are left out of its runs' identity).
_NO_LABELS = {
    "model": ("embed", "n_labels", "label_at"),
    "data": ("n_labelled", "label_seed"),
}
_NO_CLASSIFIER = ("classification_weight", "labelled_batch")


def _build(name: str) -> Any:
    def build(cfg: ModelConfig) -> Any:
        from vaelab.models import networks  # start-up: torch only when a model is made

        return getattr(networks, name)(cfg)

    return build


def article_fused(cfg: ModelConfig) -> bool:
    """The hand-written stacked step serves the article's architecture: one tanh hidden
    layer with the label (CVAE) after it. Anything else trains by autograd."""
    return len(cfg.hidden) == 1 and cfg.activation == "tanh" and cfg.label_at == "hidden"


def describe(cfg: ModelConfig) -> str:
    """784 → hidden (activation) → z; decoder z → hidden (activation) → 784, and the label."""
    hidden = " → ".join(str(h) for h in cfg.hidden)
    line = (
        f"{cfg.input_dim} → {hidden} ({cfg.activation}) → z; decoder z → {hidden} "
        f"({cfg.activation}) → {cfg.input_dim} Bernoulli logits"
    )
    return line + "; Xavier-uniform initial weights"


def describe_labelled(cfg: ModelConfig) -> str:
    label = (
        "label one-hot at the input of both"
        if cfg.label_at == "input"
        else f"label embedding {cfg.embed}"
    )
    return f"{describe(cfg)}; {label}"


def describe_m2(cfg: ModelConfig) -> str:
    hidden = " → ".join(str(h) for h in cfg.hidden)
    return f"{describe_labelled(cfg)}; q(y|x) {cfg.input_dim} → {hidden} → {cfg.n_labels}"


def export_decoder(model: Any) -> dict[str, Any]:
    from vaelab.models.export import decoder_tensors  # start-up: torch

    return decoder_tensors(model)


AE = KindRecord(
    name="ae",
    title="AE",
    help="autoencoder",
    family="mlp",
    role="ae",
    variational=False,
    labels=False,
    classifier=False,
    ignores={**_NO_LABELS, "train": ("kl_weight", "n_samples", *_NO_CLASSIFIER)},
    build=_build("AutoEncoder"),
    fused=article_fused,
    describe=describe,
    export=export_decoder,
)
VAE = KindRecord(
    name="vae",
    title="VAE",
    help="variational autoencoder",
    family="mlp",
    role="vae",
    variational=True,
    labels=False,
    classifier=False,
    ignores={**_NO_LABELS, "train": _NO_CLASSIFIER},
    build=_build("VAE"),
    fused=article_fused,
    describe=describe,
    export=export_decoder,
)
CVAE = KindRecord(
    name="cvae",
    title="CVAE",
    help="conditional VAE (label -1: none)",
    family="mlp",
    role="cvae",
    variational=True,
    labels=True,
    classifier=False,
    ignores={"train": _NO_CLASSIFIER},
    build=_build("CVAE"),
    fused=article_fused,
    describe=describe_labelled,
    export=export_decoder,
)
M2 = KindRecord(
    name="m2",
    title="M2",
    help="Kingma et al.'s M2: a CVAE with q(y|x)",
    family="mlp",
    role="m2",
    variational=True,
    labels=True,
    classifier=True,
    ignores={},
    build=_build("M2"),
    fused=never,
    describe=describe_m2,
    export=export_decoder,
)
RECORDS = (AE, VAE, CVAE, M2)
