"""Every member's batches: its own epoch order, its images as floats, its labels.

Each member of a group draws its epoch's order from its own generator (seeded with its run
seed), so a member trains on the batches it would see alone. Images stored as bytes become
floats in [0, 1]; with `data.binarize = "dynamic"` each image is a fresh Bernoulli draw with
p = its grey level, from the member's own generator on the device. The CVAE's labels come with
its images; M2 takes its labelled images in turn (`labelled.LabelledOrder`). What a checkpoint
needs to redraw all of it is the generators' states (`rng_state`), as of the epoch's start for
a checkpoint in mid-epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vaelab.core.config import RunConfig
from vaelab.data.tensors import TensorData
from vaelab.training import checkpoint
from vaelab.training.labelled import LabelledOrder


class Batches:
    """The batches of a group's members, drawn from each member's own generators."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        data: Sequence[TensorData],
        names: Sequence[str],
        *,
        labels: bool,
        labelled_batch: int | None,
        device: torch.device,
    ) -> None:
        """One member per config, with its data and its name (for messages); `labels`: the
        kind reads labels; `labelled_batch`: M2's labelled images a step, None for no M2."""
        self.data, self.labels, self.device = list(data), labels, device
        self.n_train = len(data[0].x_train)
        self.gens = [torch.Generator().manual_seed(c.train.seed) for c in configs]
        self.pixel_gens = [  # binarize = dynamic: each member's fresh draw of its images
            torch.Generator(device).manual_seed(c.train.seed + 2)
            if c.data.binarize == "dynamic"
            else None
            for c in configs
        ]
        self.labelled = (  # M2: each member's labelled images, taken in turn every step
            LabelledOrder(
                [d.y_train for d in data],
                labelled_batch,
                [c.train.seed + 3 for c in configs],
                list(names),
            )
            if labelled_batch is not None
            else None
        )
        self.epoch_start: list[dict[str, str]] = []  # the order's generators at its start

    def draw_epoch(self, steps: int) -> tuple[Tensor, Tensor | None]:
        """The epoch's batch order (G, N) and M2's labelled images (G, steps, b), drawn from
        the generators as they stand at the epoch's start (kept, for a checkpoint in
        mid-epoch)."""
        self.epoch_start = [
            checkpoint.order_state(b, self._labelled_gen(g)) for g, b in enumerate(self.gens)
        ]
        order = torch.stack([torch.randperm(self.n_train, generator=gen) for gen in self.gens])
        labelled = None
        if self.labelled is not None:
            labelled = self.labelled.epoch(steps).to(self.device)
        return order.to(self.device), labelled

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        """Each member's images (G, b, D) as float in [0, 1], and labels (G, b) for a kind
        that reads them."""
        sources = [d.x_train for d in self.data]
        if all(_same_tensor(s, sources[0]) for s in sources):  # one gather for the group
            x = sources[0].index_select(0, index.reshape(-1)).view(*index.shape, -1)
        else:
            x = torch.stack([s.index_select(0, i) for s, i in zip(sources, index, strict=True)])
        if x.dtype == torch.uint8:  # equal to data.to_float: pixel / 255
            x = x.to(torch.float32).div_(255.0)
        if any(self.pixel_gens):  # x is this batch's own copy (index_select)
            for g, gen in enumerate(self.pixel_gens):
                if gen is not None:  # each image a Bernoulli draw with p = its grey level
                    u = torch.rand(x[g].shape, generator=gen, device=self.device)
                    x[g] = (u < x[g]).to(x.dtype)
        if not self.labels:
            return x, None
        labels = [d.y_train.index_select(0, i) for d, i in zip(self.data, index, strict=True)]
        return x, torch.stack(labels)

    def rng_state(self, g: int, noise: torch.Generator, within: int) -> dict[str, str]:
        """Member g's generators (and the step's `noise`) as its checkpoint records them;
        `within` > 0: in mid-epoch, its order's generators as of the epoch's start."""
        return checkpoint.rng_state(
            self.gens[g], noise, pixels=self.pixel_gens[g], labelled=self._labelled_gen(g),
            epoch_start=self.epoch_start[g] if within else None,
        )  # fmt: skip

    def restore(self, g: int, state: dict[str, str], noise: torch.Generator) -> None:
        """Set member g's generators (and the step's `noise`) to a checkpoint's."""
        checkpoint.restore_rng(
            state, self.gens[g], noise, pixels=self.pixel_gens[g], labelled=self._labelled_gen(g)
        )

    def _labelled_gen(self, g: int) -> torch.Generator | None:
        return None if self.labelled is None else self.labelled.gens[g]


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.dtype == b.dtype
