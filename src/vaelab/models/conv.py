"""A convolutional family: AE, VAE and CVAE with a small convolutional encoder and a
transposed-convolution decoder, on 1 x 28 x 28 images.

Encoder: the flat image (B, 784) is seen as (B, 1, 28, 28); two stride-2 convolutions of
`channels` = (32, 64) maps, kernel 4, padding 1, each followed by the activation, take it to
28 -> 14 -> 7; the (B, 64 * 7 * 7) features feed linear heads for mu (and ln_var).
Decoder: a linear layer z -> 64 x 7 x 7 and the activation, then two stride-2 transposed
convolutions back to 14 x 14 x 32 (activation) and to 1 x 28 x 28 logits, returned flat.

The CVAE's label enters both networks before their first activation, as Kingma et al.'s M2
adds W_y y to its first layer's pre-activation: in the encoder as a learned bias per feature
map of the first convolution, E_enc[y] (n_labels, 32), broadcast over the 14 x 14 positions
(a convolution of one-hot label planes, without their border effects); in the decoder as
E_dec[y] (n_labels, 64 * 7 * 7) added to the first linear layer, so the label and z meet in
every transposed convolution. Label -1 means "no label" and adds nothing.

The interface is the one of `vaelab.models.networks`: encode(x, y) -> Posterior, decode(z, y)
with any leading sample dims of z, embed, reconstruct and label_for; gradients are tracked in
training mode only. Every weight is Glorot-uniform (the label tables too) and every bias zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaelab.core.config import ModelConfig
from vaelab.core.errors import VaelabError
from vaelab.models.networks import ACTIVATIONS, AutoEncoder, LabelEmbedding, Posterior

IMAGE = (1, 28, 28)  # (channels, height, width) of the images the flat inputs hold
CHANNELS = (32, 64)  # feature maps after the encoder's first and second convolution
KERNEL, STRIDE, PADDING = 4, 2, 1  # each stride-2 layer halves (or doubles) the side


def _glorot(layer: nn.Module) -> nn.Module:
    """Glorot-uniform weights (fans of a convolution count its kernel), zero bias."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ConvAE(nn.Module):
    """AE: 1x28x28 -> conv 32 -> conv 64 -> z (linear); z -> 64x7x7 -> deconv 32 -> 1x28x28."""

    is_variational = False
    uses_labels = False
    has_classifier = False

    def __init__(
        self, cfg: ModelConfig, channels: tuple[int, int] = CHANNELS, activation: str = "relu"
    ) -> None:
        super().__init__()
        if cfg.input_dim != math.prod(IMAGE):
            raise VaelabError(
                f"a convolutional model reads {IMAGE[1]} x {IMAGE[2]} images "
                f"(model.input_dim {math.prod(IMAGE)}), not {cfg.input_dim} inputs"
            )
        if activation not in ACTIVATIONS:
            raise VaelabError(
                f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}"
            )
        self.cfg, self.channels, self.activation = cfg, tuple(channels), activation
        self.act = ACTIVATIONS[activation]
        c1, c2 = channels
        self.side = IMAGE[1] // STRIDE**2  # 7: the side after two stride-2 layers
        features = c2 * self.side**2
        # in this order: parameters and initialisation follow it
        self.enc_conv1 = _glorot(nn.Conv2d(IMAGE[0], c1, KERNEL, STRIDE, PADDING))
        self.enc_conv2 = _glorot(nn.Conv2d(c1, c2, KERNEL, STRIDE, PADDING))
        self.enc_mu = _glorot(nn.Linear(features, cfg.latent))
        if self.is_variational:
            self.enc_ln_var = _glorot(nn.Linear(features, cfg.latent))
        self.dec_in = _glorot(nn.Linear(cfg.latent, features))
        self.dec_deconv1 = _glorot(nn.ConvTranspose2d(c2, c1, KERNEL, STRIDE, PADDING))
        self.dec_deconv2 = _glorot(nn.ConvTranspose2d(c1, IMAGE[0], KERNEL, STRIDE, PADDING))
        if self.uses_labels:
            self.enc_label = LabelEmbedding(cfg.n_labels, c1)
            self.dec_label = LabelEmbedding(cfg.n_labels, features)

    def features(self, x: Tensor, y: Tensor | None) -> Tensor:
        """(B, 784) images -> (B, 64 * 7 * 7) encoder features."""
        a1 = self.enc_conv1(x.reshape(-1, *IMAGE))  # (B, 32, 14, 14)
        if self.uses_labels:
            a1 = a1 + self.enc_label(_labels_or_none(y, x)).view(len(x), -1, 1, 1)
        return self.act(self.enc_conv2(self.act(a1))).flatten(1)  # (B, 3136)

    def tracking(self) -> torch.set_grad_enabled:
        """Gradients as the caller has them in training mode; none in eval mode (inference)."""
        return torch.set_grad_enabled(self.training and torch.is_grad_enabled())

    def encode(self, x: Tensor, y: Tensor | None = None) -> Posterior:
        with self.tracking():
            h = self.features(x, y)
            ln_var = self.enc_ln_var(h) if self.is_variational else None
            return Posterior(self.enc_mu(h), ln_var)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Pixel logits (..., B, 784) of z (..., B, Z); the label's part is computed once per
        image and broadcast over the leading sample dims."""
        with self.tracking():
            a0 = self.dec_in(z)  # (..., B, 3136)
            if self.uses_labels:
                a0 = a0 + self.dec_label(_labels_or_none(y, z))
            h = self.act(a0).reshape(-1, self.channels[1], self.side, self.side)  # (n, 64, 7, 7)
            logits = self.dec_deconv2(self.act(self.dec_deconv1(h)))  # (n, 1, 28, 28)
            return logits.reshape(*z.shape[:-1], math.prod(IMAGE))

    # the interface's verbs built on encode and decode, as every model has them
    label_for = AutoEncoder.label_for
    embed = AutoEncoder.embed
    reconstruct = AutoEncoder.reconstruct


class ConvVAE(ConvAE):
    """VAE: the conv AE's encoder with a second linear head for ln_var."""

    is_variational = True


class ConvCVAE(ConvVAE):
    """CVAE: the conv VAE whose first encoder and first decoder layer also add E[y]."""

    uses_labels = True


def _labels_or_none(y: Tensor | None, like: Tensor) -> Tensor:
    """The labels given, or -1 ("no label") for each of the images `like` (..., B, D) holds."""
    if y is None:
        return torch.full((like.shape[-2],), -1, dtype=torch.long, device=like.device)
    return y
