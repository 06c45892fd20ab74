"""The explorer's view of a dense decoder: its layers' tensors, as the page evaluates them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vaelab.models import spec


@torch.no_grad()
def decoder_tensors(model: Any) -> dict[str, np.ndarray]:
    """What decode(z, y) needs, by the kind's layer description (`models.spec`): each layer
    of the decoder's chain by its name (`<layer>.weight`, `<layer>.bias`), and for a kind that
    sees labels the logits each label adds (`label_logits`, one row per label: the label
    branch depends on y alone, so its rows are computed here once)."""
    state = model.state_dict()
    tensors = {}
    for layer in decoder_chain(model):
        tensors[f"{layer.name}.weight"] = state[f"{layer.name}.weight"].numpy()
        if layer.bias:
            tensors[f"{layer.name}.bias"] = state[f"{layer.name}.bias"].numpy()
    if model.uses_labels:
        digits = torch.arange(model.cfg.n_labels)
        tensors["label_logits"] = model.dec_label_out(torch.tanh(model.dec_label(digits))).numpy()
    return tensors


def decoder_chain(model: Any) -> list[spec.Layer]:
    """The layers of `model`'s decoder chain, by its layer description."""
    return [layer for layer in spec.layers(model.cfg, model.traits) if layer.path == "decoder"]
