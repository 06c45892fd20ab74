"""Each model kind's layers, described once: names, shapes, what follows them.

Everything that needs a model's layers derives them from here:
- the `nn.Module`s (`vaelab.models.networks`) create their submodules from `layers(cfg)`, in
  this order, which is also the order of their parameters and of their initialisation;
- the stacked layout of a training group (`vaelab.training.stacked`) pads the latent size of
  every member to the group's largest and puts layers of one `stack` into one buffer;
- the explorer's export (`vaelab.report.explorer`) writes each decoder as the list of its
  `decoder` layers with their activations, and the label term of the `decoder-label` ones.

Sizes are symbols read from the `ModelConfig`: "input", "hidden", "latent", "embed", "labels",
and "code" (hidden + embed for the models that see labels, else hidden: the width of the
concatenation the heads read).
"""

from __future__ import annotations

from dataclasses import dataclass

from vaelab.core.config import ModelConfig
from vaelab.core.errors import VaelabError


@dataclass(frozen=True)
class Kind:
    name: str
    variational: bool  # a Gaussian posterior (mu, ln_var) rather than one code
    labels: bool  # the encoder and decoder see a label embedding (-1: none)
    classifier: bool  # carries q(y|x)
    fused: bool  # the hand-written stacked step (`training.stacked`) serves it
    help: str


KINDS = {
    "ae": Kind("ae", False, False, False, True, "autoencoder"),
    "vae": Kind("vae", True, False, False, True, "variational autoencoder"),
    "cvae": Kind("cvae", True, True, False, True, "conditional VAE (label -1: none)"),
    "m2": Kind("m2", True, True, True, False, "Kingma et al.'s M2: a CVAE with q(y|x)"),
}
MODEL_KINDS = tuple(KINDS)


@dataclass(frozen=True)
class Layer:
    name: str  # the module attribute and state-dict prefix
    out: str  # size symbol of its output
    inp: str  # size symbol of its input (an embedding: the number of labels)
    path: str  # encoder, encoder-label, decoder, decoder-label or classifier
    activation: str = "none"  # what follows it: tanh or none
    embedding: bool = False  # a label table (label -1 gives zeros) rather than a linear map
    bias: bool = True
    fan_in: str | None = None  # Glorot's fan-in, when it is part of a wider layer
    stack: str | None = None  # stacked with the others of this name, rows one after another


def kind(name: str) -> Kind:
    if name not in KINDS:
        raise VaelabError(f"unknown model {name!r}: choose one of {', '.join(MODEL_KINDS)}")
    return KINDS[name]


def layers(cfg: ModelConfig) -> list[Layer]:
    """The layers of `cfg.kind`, in the order of its parameters."""
    k = kind(cfg.kind)
    heads = "heads"  # mu (and ln_var) read the same input: one buffer of rows in a stack
    found = [
        Layer("enc_hidden", "hidden", "input", "encoder", "tanh"),
        Layer("enc_mu", "latent", "code", "encoder", stack=heads),
    ]
    if k.variational:
        found.append(Layer("enc_ln_var", "latent", "code", "encoder", stack=heads))
    found += [
        Layer("dec_hidden", "hidden", "latent", "decoder", "tanh"),
        Layer("dec_out", "input", "hidden", "decoder", fan_in="code"),
    ]
    if k.labels:
        found += [
            Layer(
                "enc_label", "embed", "labels", "encoder-label", "tanh", embedding=True, bias=False
            ),
            Layer(
                "dec_label", "embed", "labels", "decoder-label", "tanh", embedding=True, bias=False
            ),
            Layer("dec_label_out", "input", "embed", "decoder-label", bias=False, fan_in="code"),
        ]
    if k.classifier:  # q(y|x): an MLP with the article's hidden size, ending in the logits
        found += [
            Layer("cls_hidden", "hidden", "input", "classifier", "tanh"),
            Layer("cls_out", "labels", "hidden", "classifier"),
        ]
    return found


def size(symbol: str, cfg: ModelConfig) -> int:
    k = kind(cfg.kind)
    sizes = {
        "input": cfg.input_dim,
        "hidden": cfg.hidden,
        "latent": cfg.latent,
        "embed": cfg.embed,
        "labels": cfg.n_labels,
        "code": cfg.hidden + (cfg.embed if k.labels else 0),
    }
    return sizes[symbol]


def weight_shape(layer: Layer, cfg: ModelConfig) -> tuple[int, int]:
    """(out, in) of a linear layer's weight; (labels, embed) of an embedding's table."""
    if layer.embedding:
        return size(layer.inp, cfg), size(layer.out, cfg)
    return size(layer.out, cfg), size(layer.inp, cfg)
