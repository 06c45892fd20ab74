"""The training step of every model the hand-written one does not serve (the record's `fused` False:
M2, and any kind with other hidden layers, another activation or the label at the input).

Each member's parameters lie one after another in the group's one flat buffer, in its own
module's `named_parameters` order (`MemberLayout`), so any architecture a module can express
trains with the same buffer, Adam, checkpoints and loop as the fused step. Each member's
objective (`losses.objective`) is evaluated by `torch.func.functional_call` on its own module
with its views of that buffer, and autograd's gradients are written into the same views of the
flat gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from vaelab.core.config import ModelConfig
from vaelab.models import kinds
from vaelab.models.kinds import build_model
from vaelab.models.losses import objective
from vaelab.models.networks import AutoEncoder
from vaelab.training.step import Batch

ALIGN = 64  # floats: 256 bytes, beyond any vector width


class MemberLayout:
    """The layout of G members' parameters in one flat buffer (a `training.step.Layout`):
    member after member, each in its own model's `named_parameters` order and shapes (the
    checkpoint's order too)."""

    def __init__(self, models: list[ModelConfig]) -> None:
        self.kind, self.size, self.configs = kinds.record(models[0].kind), len(models), models
        self.latents = [c.latent for c in models]
        self.zmax = max(self.latents)
        self.variational, self.labels = self.kind.variational, self.kind.labels
        self.shapes: list[dict[str, tuple[int, ...]]] = []
        for cfg in models:
            with torch.device("meta"):  # shapes only: no weights are made
                model = build_model(cfg)
            self.shapes.append({n: tuple(p.shape) for n, p in model.named_parameters()})
        sizes = [sum(math.prod(s) for s in shapes.values()) for shapes in self.shapes]
        # each member's block starts ALIGN floats apart, as a buffer of its own would: Adam's
        # vectorised pass then treats its floats as it would alone (`FlatAdam.segments`)
        padded = [-(-n // ALIGN) * ALIGN for n in sizes]
        self.starts = [sum(padded[:g]) for g in range(self.size)]
        self.segments = [(start, start + n) for start, n in zip(self.starts, sizes, strict=True)]
        self.numel = sum(padded)

    def member(self, flat: Tensor, g: int) -> dict[str, Tensor]:
        """Member g's parameters as views of `flat`, under its model's state-dict names."""
        out, start = {}, self.starts[g]
        for name, shape in self.shapes[g].items():
            n = math.prod(shape)
            out[name] = flat[start : start + n].view(shape)
            start += n
        return out


class _Objective(nn.Module):
    """A model whose forward is its training objective, for `functional_call`."""

    def __init__(self, model: AutoEncoder, ae_loss: str = "bernoulli") -> None:
        super().__init__()
        self.model = model
        self.ae_loss = ae_loss

    def forward(
        self, x: Tensor, y: Tensor | None, kl_weight: float, n_samples: int, ce_weight: float,
        generator: torch.Generator, labelled: tuple[Tensor, Tensor] | None,
    ) -> Tensor:  # fmt: skip
        out = objective(
            self.model, x, y, kl_weight=kl_weight, n_samples=n_samples, ce_weight=ce_weight,
            generator=generator, labelled=labelled, ae_loss=self.ae_loss,
        )  # fmt: skip
        return torch.stack(list(out))


class AutogradStep:
    """Loss terms (G, 3) and, into the flat gradient, each member's gradient, by autograd.

    The leaves autograd differentiates are views of the flat parameters (Adam updates them in
    place), and the gradients are copied into the same views of the flat gradient."""

    def __init__(
        self,
        layout: MemberLayout,
        models: Sequence[ModelConfig],
        params: Tensor,
        grad: Tensor,
        ae_loss: str,
        *,
        kl_weights: Sequence[float],
        n_samples: int,
        ce_weights: Sequence[float],
        generators: Sequence[torch.Generator],
    ) -> None:
        self.kl_weights, self.n_samples = tuple(kl_weights), n_samples
        self.ce_weights, self.generators = tuple(ce_weights), list(generators)
        self.modules = []
        for cfg in models:
            with torch.device("meta"):  # its weights are always the views passed in
                self.modules.append(_Objective(build_model(cfg).train(), ae_loss))
        self.leaves = [  # views of the flat parameters, each a leaf of its own
            {f"model.{k}": v.detach().requires_grad_(True) for k, v in views.items()}
            for views in (layout.member(params, g) for g in range(layout.size))
        ]
        self.grads = [view for g in range(layout.size) for view in layout.member(grad, g).values()]

    def __call__(self, batch: Batch) -> Tensor:
        """The `step.Step` of the models the fused step does not serve: `batch.labelled` holds
        each member's labelled images and labels of the step's classification term."""
        x, y, labelled = batch.x, batch.y, batch.labelled
        terms = []
        for g, module in enumerate(self.modules):
            own_y = None if y is None else y[g]
            args = (x[g], own_y, self.kl_weights[g], self.n_samples, self.ce_weights[g])
            own = None if labelled is None else (labelled[0][g], labelled[1][g])
            call = (*args, self.generators[g], own)
            terms.append(functional_call(module, self.leaves[g], call))
        found = torch.stack(terms)  # (G, 3)
        leaves = [leaf for member in self.leaves for leaf in member.values()]
        grads = torch.autograd.grad(found[:, 0].sum(), leaves, materialize_grads=True)
        torch._foreach_copy_(self.grads, grads)  # one pass into the flat gradient's views
        return found.detach()
