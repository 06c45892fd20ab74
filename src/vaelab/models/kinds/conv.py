"""The convolutional family (`vaelab.models.conv`): AE, VAE and CVAE with two stride-2
convolutions of 32 and 64 maps and a transposed-convolution decoder.

Their architecture is the module's own constants, so the MLP settings of the architecture
(hidden, embed, activation, label_at) are not theirs: left out of their runs' identity, and a
study's `activation` does not silently change them. They train by autograd, and the explorer,
which evaluates dense decoders, leaves them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vaelab.models.kinds.base import KindRecord, never

if TYPE_CHECKING:
    from vaelab.core.config import ModelConfig

_ARCHITECTURE = ("hidden", "embed", "activation", "label_at")
_NO_CLASSIFIER = ("classification_weight", "labelled_batch")
_NO_LABELS = {
    "model": (*_ARCHITECTURE, "n_labels"),
    "data": ("n_labelled", "label_seed"),
}


def _build(name: str) -> Any:
    def build(cfg: ModelConfig) -> Any:
        from vaelab.models import conv  # start-up: torch only when a model is made

        return getattr(conv, name)(cfg)

    return build


def describe(cfg: ModelConfig) -> str:
    from vaelab.models import conv  # start-up: the constants live with the module

    (c, h, w), (c1, c2), k = conv.IMAGE, conv.CHANNELS, conv.KERNEL
    side = h // conv.STRIDE**2
    return (
        f"{c}×{h}×{w} → conv {c1} ({k}×{k}, stride {conv.STRIDE}) → conv {c2} → z; "
        f"decoder z → {c2}×{side}×{side} → deconv {c1} → deconv {c} ({h}×{w} Bernoulli "
        "logits); ReLU; Glorot-uniform initial weights"
    )


def describe_labelled(cfg: ModelConfig) -> str:
    return f"{describe(cfg)}; the label added before the first activation of both networks"


CONV_AE = KindRecord(
    name="conv-ae",
    title="conv AE",
    help="convolutional autoencoder",
    family="conv",
    role="ae",
    variational=False,
    labels=False,
    classifier=False,
    ignores={**_NO_LABELS, "train": ("kl_weight", "n_samples", *_NO_CLASSIFIER)},
    build=_build("ConvAE"),
    fused=never,
    describe=describe,
)
CONV_VAE = KindRecord(
    name="conv-vae",
    title="conv VAE",
    help="convolutional VAE",
    family="conv",
    role="vae",
    variational=True,
    labels=False,
    classifier=False,
    ignores={**_NO_LABELS, "train": _NO_CLASSIFIER},
    build=_build("ConvVAE"),
    fused=never,
    describe=describe,
)
CONV_CVAE = KindRecord(
    name="conv-cvae",
    title="conv CVAE",
    help="convolutional CVAE (label -1: none)",
    family="conv",
    role="cvae",
    variational=True,
    labels=True,
    classifier=False,
    ignores={"model": _ARCHITECTURE, "train": _NO_CLASSIFIER},
    build=_build("ConvCVAE"),
    fused=never,
    describe=describe_labelled,
)
RECORDS = (CONV_AE, CONV_VAE, CONV_CVAE)
