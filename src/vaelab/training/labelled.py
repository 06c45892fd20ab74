"""The labelled images each M2 step classifies: every member's own seeded order of them.

Kingma et al.'s M2 weighs -log q(y|x) on the labelled images. With 100 labels among 60,000
images, a batch drawn from the whole training set holds a labelled image one step in six, so
each step instead takes `train.labelled_batch` labelled images in turn from a permutation of
them, a fresh one each time it is used up, starting afresh at each epoch. An epoch's order
is drawn at its start from the member's generator, so the generator's state at an epoch's
end (saved in checkpoints) is all a resume needs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.core.errors import VaelabError


class LabelledOrder:
    """Each member's labelled training images, (G, steps, b) indices per epoch."""

    def __init__(self, labels: list[Tensor], batch: int, seeds: list[int], where: list[str]):
        self.index = []
        for y, name in zip(labels, where, strict=True):
            found = (y >= 0).nonzero().squeeze(1).cpu()
            if len(found) == 0:
                raise VaelabError(f"{name}: M2 needs labelled images; data.n_labelled is 0")
            self.index.append(found)
        self.batch = batch
        self.gens = [torch.Generator().manual_seed(seed) for seed in seeds]

    def epoch(self, steps: int) -> Tensor:
        """(G, steps, batch) indices into the training set, each member's in its own order."""
        rows = []
        for index, gen in zip(self.index, self.gens, strict=True):
            need = -(-steps * self.batch // len(index))  # permutations to draw
            order = torch.cat(
                [index[torch.randperm(len(index), generator=gen)] for _ in range(need)]
            )
            rows.append(order[: steps * self.batch].view(steps, self.batch))
        return torch.stack(rows)
