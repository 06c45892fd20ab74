"""The baseline of the semi-supervised study: q(y|x)'s network trained on the labels alone.

The same hidden layers and activation as M2's classifier, 10 logits, cross-entropy, Adam on
batches drawn with replacement, seeded; with a validation split, the network is read at the
evaluation with the lowest validation error, as M2 is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from vaelab.core.config import ModelConfig

STEPS = 2000  # Adam steps, whatever the number of labels
EVERY = 100  # steps between readings of the validation error
ACTIVATION_MODULES = {"tanh": nn.Tanh, "softplus": nn.Softplus, "relu": nn.ReLU}


def labelled_only_error(
    x: torch.Tensor,
    y: np.ndarray,
    x_test: torch.Tensor,
    y_test: np.ndarray,
    model: ModelConfig,
    lr: float,
    seed: int,
    validation: tuple[torch.Tensor, np.ndarray] | None = None,
) -> float:
    """The test error of q(y|x)'s network (`model`'s hidden layers and activation, 10 logits)
    trained on (x, y) alone: Adam, batches of up to 100, `STEPS` steps, seeded; with
    `validation` (images, labels), the test error at the evaluation (every `EVERY` steps)
    with the lowest validation error."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = x.shape[1]
        for h in model.hidden:
            layers += [nn.Linear(width, h), ACTIVATION_MODULES[model.activation]()]
            width = h
        net = nn.Sequential(*layers, nn.Linear(width, 10))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    labels = torch.from_numpy(y)
    batch = min(100, len(x))
    best = (math.inf, math.inf)  # (validation error, test error)
    for step in range(1, STEPS + 1):
        pick = torch.randint(0, len(x), (batch,), generator=gen)
        loss = nn.functional.cross_entropy(net(x[pick]), labels[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if validation is not None and step % EVERY == 0:
            with torch.no_grad():
                here = float((net(validation[0]).argmax(-1).numpy() != validation[1]).mean())
            if here < best[0]:
                best = (here, _error(net, x_test, y_test))
    return _error(net, x_test, y_test) if validation is None else best[1]


@torch.no_grad()
def _error(net: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    return float((net(x).argmax(-1).numpy() != y).mean())
