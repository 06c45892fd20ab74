"""The training step of a model kind without a hand-written one (`Kind.fused` False: M2).

Every member's objective (`losses.objective`) is evaluated on its own views of the group's
one flat parameter buffer, through `torch.func.functional_call` on a module of its shapes, and
autograd fills the flat gradient: the same buffer, Adam, checkpoints and loop as the fused
step (`stacked.forward_backward`), which serves the article's AE, VAE and CVAE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from vaelab.core.config import ModelConfig
from vaelab.models.losses import objective
from vaelab.models.networks import AutoEncoder, build_model
from vaelab.training.stacked import Stack


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
    """Loss terms (G, 3) and, into `grad`, each member's gradient, by autograd."""

    def __init__(
        self,
        stack: Stack,
        models: Sequence[ModelConfig],
        device: torch.device,
        ae_loss: str = "bernoulli",
    ) -> None:
        self.stack = stack
        self.modules = [_Objective(build_model(m).to(device).train(), ae_loss) for m in models]

    def __call__(
        self,
        params: Tensor,
        grad: Tensor,
        x: Tensor,
        y: Tensor | None,
        kl_weights: Sequence[float],
        n_samples: int,
        ce_weights: Sequence[float],
        generators: Sequence[torch.Generator],
        labelled: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """`labelled`: each member's labelled images and labels of the step, (G, b, D), (G, b)."""
        flat = params.detach().requires_grad_(True)
        terms = []
        for g, module in enumerate(self.modules):
            weights = {f"model.{k}": v for k, v in self.stack.member(flat, g).items()}
            args = (x[g], None if y is None else y[g], kl_weights[g], n_samples, ce_weights[g])
            own = None if labelled is None else (labelled[0][g], labelled[1][g])
            terms.append(functional_call(module, weights, (*args, generators[g], own)))
        found = torch.stack(terms)  # (G, 3)
        (found_grad,) = torch.autograd.grad(found[:, 0].sum(), flat)
        grad.copy_(found_grad)
        return found.detach()
