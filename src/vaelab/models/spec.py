"""Each model kind's layers, described once: names, shapes, what follows them.

Everything that needs a model's layers derives them from here:
- the `nn.Module`s (`vaelab.models.networks`) create their submodules from `layers(cfg)`, in
  this order, which is also the order of their parameters and of their initialisation;
- the stacked layout of a training group of the article's models (`vaelab.training.stacked`,
  where the kind's record's `fused` says the hand-written step serves them) pads the latent
  size of every member to the group's largest and puts layers of one `stack` into one buffer;
- the explorer's export (`vaelab.report.explorer`) writes each decoder as the list of its
  `decoder` layers with their activations, and the label term of the `decoder-label` ones
  (`logits_label_decoder` says which decoders that describes).

What a kind holds (an ln_var head, label layers, q(y|x)) comes in as its `Traits`, from its
module or its record: this module asks no registry. Sizes are symbols read from the
`ModelConfig`: "input", "latent", "embed", "labels", "hidden"
(the first hidden layer's width), "hidden2", "hidden3", ... (the next ones'), "code" (the width
a label embedding is concatenated into: hidden + embed for the models that see labels after
the first hidden layer, else hidden) and sums such as "input+labels" (a layer that reads the
one-hot label beside its input, for Glorot's fan-in).

Where the label enters (`label_at`): "hidden", the article's CVAE, concatenates tanh(E[y]) to
the first hidden activation of the encoder and of the decoder; "input", Kingma et al.'s M2,
adds W_y y to the first hidden layer's input of both (W [x; y] + b with the one-hot y).
"""

from __future__ import annotations

from dataclasses import dataclass

from vaelab.core.config import ModelConfig


@dataclass(frozen=True)
class Traits:
    """What a kind's networks hold beside an encoder and a decoder: its module says
    (`AutoEncoder.traits`), and so does its record (`KindRecord.traits`)."""

    variational: bool  # an ln_var head beside mu
    labels: bool  # label layers (where: the config's `label_at`)
    classifier: bool  # q(y|x)


@dataclass(frozen=True)
class Layer:
    name: str  # the module attribute and state-dict prefix
    out: str  # size symbol of its output
    inp: str  # size symbol of its input (an embedding: the number of labels)
    path: str  # encoder, encoder-label, decoder, decoder-label or classifier
    activation: str = "none"  # what follows it: tanh, softplus, relu or none
    embedding: bool = False  # a label table (label -1 gives zeros) rather than a linear map
    bias: bool = True
    fan_in: str | None = None  # Glorot's fan-in, when it is part of a wider layer
    stack: str | None = None  # stacked with the others of this name, rows one after another


def logits_label_decoder(cfg: ModelConfig, traits: Traits) -> bool:
    """Whether the decoder is the chain of its "decoder" layers (tanh or relu) with, for a kind
    that sees labels, a per-label term added to the logits: what the explorer page evaluates."""
    if cfg.activation not in ("tanh", "relu"):
        return False
    at = labels_at(cfg, traits)
    return at is None or (at == "hidden" and len(cfg.hidden) == 1)


def hidden_names(prefix: str, n: int) -> list[str]:
    """The hidden layers of one network: <prefix>, <prefix>_2, <prefix>_3, ..."""
    return [prefix] + [f"{prefix}_{i}" for i in range(2, n + 1)]


def hidden_size(i: int) -> str:
    """The size symbol of hidden layer i (0-based)."""
    return "hidden" if i == 0 else f"hidden{i + 1}"


def labels_at(cfg: ModelConfig, traits: Traits) -> str | None:
    """Where `cfg`'s label enters: "hidden", "input", or None for a kind without labels."""
    return cfg.label_at if traits.labels else None


def layers(cfg: ModelConfig, traits: Traits) -> list[Layer]:
    """The layers of a kind with `traits`, in the order of its parameters: the encoder's, the
    decoder's, the label's (CVAE, M2), the classifier's (M2). Every network has the hidden
    layers of `cfg.hidden` in order from its input."""
    k, n, at = traits, len(cfg.hidden), labels_at(cfg, traits)
    one_hot = "input+labels" if at == "input" else None  # W [x; y]: Glorot's fan-in of both
    # With labels at "hidden", the layer after the first hidden one reads concat(h, label):
    # one weight in the encoder; in the decoder, the part reading h and the part reading the
    # label (dec_label_out), as the article's CVAE computes it.
    concat = "code" if at == "hidden" else None
    heads_in = "code" if n == 1 else hidden_size(n - 1)
    heads = "heads"  # mu (and ln_var) read the same input: one buffer of rows in a stack
    found = _chain(cfg, "enc_hidden", "encoder", ("input", one_hot), (concat or "hidden", None))
    found.append(Layer("enc_mu", "latent", heads_in, "encoder", stack=heads))
    if k.variational:
        found.append(Layer("enc_ln_var", "latent", heads_in, "encoder", stack=heads))
    one_hot = "latent+labels" if at == "input" else None
    found += _chain(cfg, "dec_hidden", "decoder", ("latent", one_hot), ("hidden", concat))
    found.append(
        Layer("dec_out", "input", "hidden", "decoder", fan_in=concat)
        if n == 1
        else Layer("dec_out", "input", hidden_size(n - 1), "decoder")
    )
    act = cfg.activation
    if at == "hidden":
        split = "input" if n == 1 else "hidden2"  # the decoder's layer after the concat
        found += [
            Layer("enc_label", "embed", "labels", "encoder-label", act, embedding=True, bias=False),
            Layer("dec_label", "embed", "labels", "decoder-label", act, embedding=True, bias=False),
            Layer("dec_label_out", split, "embed", "decoder-label", bias=False, fan_in="code"),
        ]
    elif at == "input":  # W_y of W [x; y] + b: one column per label
        found += [
            Layer("enc_label_in", "hidden", "labels", "encoder-label", bias=False,
                  fan_in="input+labels"),
            Layer("dec_label_in", "hidden", "labels", "decoder-label", bias=False,
                  fan_in="latent+labels"),
        ]  # fmt: skip
    if k.classifier:  # q(y|x): an MLP with the same hidden layers, ending in the logits
        found += _chain(cfg, "cls_hidden", "classifier", ("input", None), ("hidden", None))
        found.append(Layer("cls_out", "labels", hidden_size(n - 1), "classifier"))
    return found


def _chain(
    cfg: ModelConfig,
    prefix: str,
    path: str,
    first: tuple[str, str | None],
    second: tuple[str, str | None],
) -> list[Layer]:
    """The hidden layers of one network: the first reads first = (input, Glorot's fan-in),
    the second second = (input, fan-in), each later one the layer before it."""
    found = []
    for i, name in enumerate(hidden_names(prefix, len(cfg.hidden))):
        inp, fan_in = first if i == 0 else second if i == 1 else (hidden_size(i - 1), None)
        found.append(Layer(name, hidden_size(i), inp, path, cfg.activation, fan_in=fan_in))
    return found


def size(symbol: str, cfg: ModelConfig, traits: Traits) -> int:
    if "+" in symbol:
        return sum(size(part, cfg, traits) for part in symbol.split("+"))
    if symbol.startswith("hidden"):
        return cfg.hidden[int(symbol[len("hidden") :] or 1) - 1]
    sizes = {
        "input": cfg.input_dim,
        "latent": cfg.latent,
        "embed": cfg.embed,
        "labels": cfg.n_labels,
        "code": cfg.hidden[0] + (cfg.embed if labels_at(cfg, traits) == "hidden" else 0),
    }
    return sizes[symbol]


def weight_shape(layer: Layer, cfg: ModelConfig, traits: Traits) -> tuple[int, int]:
    """(out, in) of a linear layer's weight; (labels, embed) of an embedding's table."""
    if layer.embedding:
        return size(layer.inp, cfg, traits), size(layer.out, cfg, traits)
    return size(layer.out, cfg, traits), size(layer.inp, cfg, traits)
