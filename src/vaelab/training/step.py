"""One training step's interface: a `Step` takes a `Batch` and returns each member's loss
terms (G, 3), having written each member's gradient into the group's flat gradient.

Two steps implement it: `FusedStep`, the hand-written stacked forward and backward of the
article's models (`stacked.forward_backward`), and `autograd_step.AutogradStep` on every
other model's own module. Every per-member setting (C, k, M2's weight, the noise generators)
is given once, when the step is made; the trainer only hands it batches.

Each step reads the group's parameters through a `Layout`, which says where each member's
parameters lie in the one flat buffer: `stacked.Stack` (the fused step's stacked row blocks,
members side by side) or `autograd_step.MemberLayout` (member after member). The trainer,
the checkpoint and Adam ask the layout, never which one it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from vaelab.models.kinds.base import KindRecord
from vaelab.training.stacked import Stack, forward_backward


class Layout(Protocol):
    """Where each member's parameters lie in the group's one flat buffer."""

    kind: KindRecord  # the members' kind (one per group)
    labels: bool  # the kind reads labels
    numel: int  # the buffer's length
    segments: list[tuple[int, int]] | None  # each member's [start, end); None: interleaved

    def member(self, flat: Tensor, g: int) -> dict[str, Tensor]:
        """Member g's parameters as views of `flat`, under its own module's state-dict names
        and in their order (the checkpoint's order too)."""
        ...


@dataclass(frozen=True)
class Batch:
    x: Tensor  # (G, b, D) images in [0, 1]
    y: Tensor | None  # (G, b) labels, -1: none; None for kinds that read no labels
    labelled: tuple[Tensor, Tensor] | None = None  # (G, b_l, D), (G, b_l): q(y|x)'s images


class Step(Protocol):
    def __call__(self, batch: Batch) -> Tensor:
        """The terms (G, 3): loss, reconstruction, KL; each member's gradient into the flat
        gradient."""
        ...


class FusedStep:
    """The hand-written stacked step: the article's AE, VAE and CVAE (`kinds.record.fused`)."""

    def __init__(
        self,
        stack: Stack,
        params: Tensor,
        grad: Tensor,
        kl_weights: Sequence[float],
        n_samples: int,
        noise_gens: Sequence[torch.Generator],
        device: torch.device,
    ) -> None:
        self.stack, self.kl_weights = stack, tuple(kl_weights)
        self.n_samples, self.noise_gens, self.device = n_samples, list(noise_gens), device
        self.views, self.grads = stack.views(params), stack.views(grad)

    def __call__(self, batch: Batch) -> Tensor:
        eps = self.noise(batch.x.shape[1]) if self.stack.variational else None
        return forward_backward(
            self.stack, self.views, self.grads, batch.x, batch.y, eps, self.kl_weights
        )

    def noise(self, b: int) -> Tensor:
        """(G, k, b, Z): each member's own draw at its own shape, zero-padded to Z."""
        k, z_max, device = self.n_samples, self.stack.zmax, self.device
        draws = [
            torch.randn((k, b, z), generator=gen, device=device)
            for z, gen in zip(self.stack.latents, self.noise_gens, strict=True)
        ]
        if len(draws) == 1:
            return draws[0].unsqueeze(0)
        eps = torch.zeros(len(draws), k, b, z_max, device=device)
        for g, draw in enumerate(draws):
            eps[g, ..., : draw.shape[-1]] = draw
        return eps
