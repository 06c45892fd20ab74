"""The article's three models, AE, VAE and CVAE, and the CVAE's citation's M2, of any width,
depth and activation, with the label where the article or Kingma et al. put it.

Each model only maps images to latents and latents to pixel logits; losses live in
`vaelab.models.losses` and the training loop in `vaelab.training`. All three share one
interface:

    encode(x, y=None)    -> Posterior(mu, ln_var)   (ln_var is None for the AE)
    decode(z, y=None)    -> pixel logits, z may carry leading sample dims: (k, B, Z) -> (k, B, 784)
    embed(x, y=None)     -> the latent code used for plots and clustering (the mean)
    reconstruct(x, y=None) -> sigmoid(decode(mean)), no sampling
    label_for(x, y)      -> the labels encode and decode both see (M2: q(y|x)'s where none is)

Labels `y` matter only to the CVAE and M2, where -1 means "no label": a zero embedding (the
article's wiring) or a zero one-hot (the label at the input). The layers come from
`vaelab.models.spec`: `model.hidden` (one or more), `model.activation`, `model.label_at`.

Inference gives plain tensors: `embed` and `reconstruct` never track gradients, and `encode` and
`decode` track them only while the model is in training mode (`model.train()`, as the losses
use them). A trained or loaded model is in eval mode, so its outputs go straight to `.numpy()`
or scikit-learn. To differentiate through a trained model, call `model.train()` first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vaelab.core.config import ModelConfig
from vaelab.models import kernels, spec

_Method = TypeVar("_Method", bound=Callable)


def _grad_only_in_training(method: _Method) -> _Method:
    """Track gradients through `method` in training mode only; in eval mode it is inference."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.training:
            return method(self, *args, **kwargs)
        with torch.no_grad():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Posterior(NamedTuple):
    mu: Tensor  # (B, Z)
    ln_var: Tensor | None  # (B, Z), log sigma^2; None for the deterministic AE


def _xavier_linear(
    n_in: int, n_out: int, fan_in: int | None = None, bias: bool = True
) -> nn.Linear:
    """Glorot-uniform weights, zero bias. `fan_in` > n_in: this layer is the part of a wider
    one (a concat's input) that acts on n_in of its inputs, and takes that layer's bound."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    bound = math.sqrt(6.0 / ((fan_in or n_in) + n_out))
    nn.init.uniform_(layer.weight, -bound, bound)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _make(layer: spec.Layer, cfg: ModelConfig, traits: spec.Traits) -> nn.Module:
    """The module of one described layer, freshly initialised."""
    if layer.embedding:
        return LabelEmbedding(*spec.weight_shape(layer, cfg, traits))
    n_out, n_in = spec.weight_shape(layer, cfg, traits)
    fan_in = spec.size(layer.fan_in, cfg, traits) if layer.fan_in else None
    return _xavier_linear(n_in, n_out, fan_in=fan_in, bias=layer.bias)


class LabelEmbedding(nn.Module):
    """A (n_labels, dim) table where label -1 maps to the zero vector.

    The zero row is not a parameter, so unlabelled images neither use nor train it and
    the parameter count stays n_labels * dim, as in the article's EmbedID(ignore_label=-1).
    """

    def __init__(self, n_labels: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_labels, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, y: Tensor) -> Tensor:
        known = (y >= 0).unsqueeze(-1)  # (B, 1)
        return F.embedding(y.clamp(min=0), self.weight) * known  # (B, dim)


class _Softplus(torch.autograd.Function):
    """softplus(a) = log(1 + e^a), keeping its slope sigmoid(a) from the forward pass: one
    exp per element serves both passes (`kernels.softplus`), where torch's backward takes
    another."""

    @staticmethod
    def forward(ctx: Any, a: Tensor) -> Tensor:
        fused = kernels.softplus(a)
        h, slope = fused if fused is not None else (F.softplus(a), torch.sigmoid(a))
        ctx.save_for_backward(slope)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (slope,) = ctx.saved_tensors
        return grad * slope


def softplus(a: Tensor) -> Tensor:
    """softplus: through the C kernel where autograd will want its slope, on a CPU (within a few
    units in the last place of `F.softplus`); else torch's."""
    if torch.is_grad_enabled() and a.requires_grad and kernels.softplus_applies(a):
        return _Softplus.apply(a)
    return F.softplus(a)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "softplus": softplus,
    "relu": torch.relu,
}


def label_columns(weight: Tensor, y: Tensor) -> Tensor:
    """W_y y for one-hot labels y: the columns of `weight` (H, labels) that `y` (B,) picks,
    (B, H); label -1 ("no label") gives zeros."""
    return F.embedding(y.clamp(min=0), weight.T) * (y >= 0).unsqueeze(-1)


class AutoEncoder(nn.Module):
    """AE: 784 -> hidden -> z (linear); z -> hidden -> 784 logits (the article: one hidden
    layer of 128 tanh units)."""

    is_variational = False
    uses_labels = False
    has_classifier = False  # q(y|x): `classify` and `predict_proba` (M2)

    @property
    def traits(self) -> spec.Traits:
        """What this module holds, in the terms of its layer description (`models.spec`)."""
        return spec.Traits(self.is_variational, self.uses_labels, self.has_classifier)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        traits = self.traits
        for layer in spec.layers(cfg, traits):  # in order: parameters and initialisation
            setattr(self, layer.name, _make(layer, cfg, traits))
        self.act = ACTIVATIONS[cfg.activation]
        self.label_at = spec.labels_at(cfg, traits)  # None, "hidden" or "input"
        n = len(cfg.hidden)
        self.enc_chain = spec.hidden_names("enc_hidden", n)
        self.dec_chain = [*spec.hidden_names("dec_hidden", n), "dec_out"]

    def layers_after(self, chain: list[str], h: Tensor, start: int) -> Tensor:
        """h through chain[start:], each followed by the activation but "dec_out"."""
        for name in chain[start:]:
            h = getattr(self, name)(h)
            h = h if name == "dec_out" else self.act(h)
        return h

    def encoder_features(self, x: Tensor, y: Tensor | None) -> Tensor:
        """What the heads read: the last hidden layer of q(z|x) (or q(z|x,y))."""
        a = self.enc_hidden(x)  # (B, H)
        if self.label_at == "input":
            a = a + label_columns(
                self.enc_label_in.weight, _labels_or_none(y, x.shape[0], x.device)
            )
        h = self.act(a)
        if self.label_at == "hidden":
            h = torch.cat(
                [h, self.label_units(self.enc_label, _labels_or_none(y, x.shape[0], x.device))],
                dim=-1,
            )
        return self.layers_after(self.enc_chain, h, 1)

    def label_units(self, table: nn.Module, y: Tensor) -> Tensor:
        """act(E[y]) for the labels given and zeros for label -1 (the article's tanh(E[y]))."""
        return self.act(table(y)) * (y >= 0).unsqueeze(-1)

    def decode_with(self, z: Tensor, first: Tensor | None, second: Tensor | None) -> Tensor:
        """Logits of z (..., B, Z) with a label's part added to the first layer's
        pre-activation (`first`, label at the input) or the second's (`second`, label after
        the first hidden layer); each broadcasts over z's leading dims."""
        a = self.dec_hidden(z)
        h = self.act(a if first is None else a + first)
        a = getattr(self, self.dec_chain[1])(h)
        h = a if second is None else a + second
        if len(self.dec_chain) > 2:  # more layers: the second was a hidden one
            h = self.layers_after(self.dec_chain, self.act(h), 2)
        return h

    @_grad_only_in_training
    def encode(self, x: Tensor, y: Tensor | None = None) -> Posterior:
        return Posterior(self.enc_mu(self.encoder_features(x, None)), None)

    @_grad_only_in_training
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decode_with(z, None, None)

    def label_for(self, x: Tensor, y: Tensor | None) -> Tensor | None:
        """The labels encode and decode should both see: the ones given (M2 fills in its own
        reading where none is given, so a decode can follow an encode with the same label)."""
        return y

    @torch.no_grad()
    def embed(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The latent code (the posterior mean) for plots and clustering; never tracks grad."""
        return self.encode(x, y).mu

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """sigmoid(decode(mean)): pixels in [0, 1], no sampling; never tracks grad."""
        y = self.label_for(x, y)
        return torch.sigmoid(self.decode(self.encode(x, y).mu, y))


class VAE(AutoEncoder):
    """VAE: the AE's encoder with a second linear head for ln_var (Kingma & Welling 2013)."""

    is_variational = True

    @_grad_only_in_training
    def encode(self, x: Tensor, y: Tensor | None = None) -> Posterior:
        h = self.encoder_features(x, None)
        return Posterior(self.enc_mu(h), self.enc_ln_var(h))


class CVAE(VAE):
    """CVAE: VAE whose encoder and decoder also see the label (Kingma et al. 2014).

    The article's (label_at = "hidden"):
    Encoder: concat(tanh(W x), tanh(E_enc[y])) -> mu, ln_var.
    Decoder: concat(tanh(W z), tanh(E_dec[y])) -> 784 logits.
    Kingma et al.'s (label_at = "input"): the one-hot y joins the input of both,
    act(W_x x + W_y y + b) and act(W_z z + W_y y + b).
    """

    uses_labels = True

    @_grad_only_in_training
    def encode(self, x: Tensor, y: Tensor | None = None) -> Posterior:
        h = self.encoder_features(x, _labels_or_none(y, x.shape[0], x.device))
        return Posterior(self.enc_mu(h), self.enc_ln_var(h))

    @_grad_only_in_training
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # the label's part is computed once per image and broadcast over z's sample dims
        y = _labels_or_none(y, z.shape[-2], z.device)
        if self.label_at == "input":
            return self.decode_with(z, label_columns(self.dec_label_in.weight, y), None)
        # W concat(h_z, h_y) + b = W_z h_z + b + W_y h_y
        return self.decode_with(z, None, self.dec_label_out(self.label_units(self.dec_label, y)))


class M2(CVAE):
    """Kingma et al.'s M2: the CVAE's q(z|x,y) and p(x|y,z) with a classifier q(y|x), an MLP
    784 -> hidden -> 10 logits. Where no label is given (None or -1), encoding and
    reconstruction use q(y|x)'s most probable label; the training objective sums the bound
    over every label instead (`losses.m2_objective`)."""

    has_classifier = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.cls_chain = [*spec.hidden_names("cls_hidden", len(cfg.hidden)), "cls_out"]

    @_grad_only_in_training
    def classify(self, x: Tensor) -> Tensor:
        """q(y|x)'s logits (B, 10)."""
        h = x
        for name in self.cls_chain[:-1]:
            h = self.act(getattr(self, name)(h))
        return self.cls_out(h)

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """q(y|x) (B, 10); never tracks grad."""
        return torch.softmax(self.classify(x), dim=-1)

    def label_for(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The labels given, with q(y|x)'s argmax wherever none is (None or -1)."""
        if y is not None and bool((y >= 0).all()):
            return y  # every label given: q(y|x) is not needed
        guess = self.classify(x).argmax(-1).detach()
        return guess if y is None else torch.where(y >= 0, y, guess)

    @_grad_only_in_training
    def encode(self, x: Tensor, y: Tensor | None = None) -> Posterior:
        return super().encode(x, self.label_for(x, y))

    @_grad_only_in_training
    def encode_each_label(self, x: Tensor) -> Posterior:
        """q(z|x,y) under each of the ten labels: mu and ln_var (10, B, Z).

        The image part of the first layer that sees the label is computed once, and the
        label's part (one row per label) is broadcast over the images."""
        if self.label_at == "input":
            a = self.enc_hidden(x) + self.enc_label_in.weight.T.unsqueeze(1)  # (10, B, H)
            h = self.layers_after(self.enc_chain, self.act(a), 1)
            return Posterior(self.enc_mu(h), self.enc_ln_var(h))
        h_x = self.act(self.enc_hidden(x))  # (B, H)
        h_y = self.act(self.enc_label.weight)  # (10, E)
        n = h_x.shape[-1]

        def concat_read_by(layer: nn.Linear) -> Tensor:  # layer(concat(h_x, h_y)), (10, B, out)
            w = layer.weight
            return F.linear(h_x, w[:, :n], layer.bias) + F.linear(h_y, w[:, n:]).unsqueeze(1)

        if len(self.enc_chain) == 1:  # the article's: the heads read the concatenation
            return Posterior(concat_read_by(self.enc_mu), concat_read_by(self.enc_ln_var))
        h = self.layers_after(self.enc_chain, self.act(concat_read_by(self.enc_hidden_2)), 2)
        return Posterior(self.enc_mu(h), self.enc_ln_var(h))

    @_grad_only_in_training
    def decode_each_label(self, z: Tensor) -> Tensor:
        """Pixel logits (..., 10, B, 784) of z (..., 10, B, Z), row l decoded under label l."""
        if self.label_at == "input":
            return self.decode_with(z, self.dec_label_in.weight.T.unsqueeze(1), None)
        h_y = self.act(self.dec_label.weight)  # (10, E)
        return self.decode_with(z, None, self.dec_label_out(h_y).unsqueeze(1))


def _labels_or_none(y: Tensor | None, batch: int, device: torch.device) -> Tensor:
    """The labels given, or -1 ("no label") for every image."""
    if y is None:
        return torch.full((batch,), -1, dtype=torch.long, device=device)
    return y


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
