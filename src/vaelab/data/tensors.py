"""A run's data as tensors on its device, split and labelled as its settings say."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vaelab.core.config import RunConfig
from vaelab.core.device import resolve_device, same_device
from vaelab.core.errors import VaelabError
from vaelab.data.mnist import MNIST
from vaelab.data.splits import pixels, semi_supervised_labels, test_subset, to_float


@dataclass(frozen=True)
class TensorData:
    """MNIST as float tensors on one device, split and labelled as a run's DataConfig says."""

    x_train: Tensor  # (N, 784) float32 in [0, 1]
    y_train: Tensor  # (N,) int64; -1 where the label is withheld
    x_test: Tensor  # (M, 784)
    y_test: Tensor  # (M,) int64, always the true labels
    sha256: str = ""  # content fingerprint of the MNIST these came from ("" unknown)
    source: str = ""  # where that MNIST came from

    @classmethod
    def from_mnist(
        cls, mnist: MNIST, cfg: RunConfig, device: torch.device | str | None = None
    ) -> TensorData:
        """The run's split of `mnist`, on `device` (None: the device `cfg.train.device` names)."""
        d = cfg.data
        device = resolve_device(cfg.train.device) if device is None else device
        n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
        y_train = mnist.y_train[:n].astype(np.int64)
        if cfg.model.kind in ("cvae", "m2"):  # the models that see labels
            label_seed = cfg.train.seed if d.label_seed is None else d.label_seed
            y_train = semi_supervised_labels(y_train, min(d.n_labelled, n), label_seed)
        test = test_subset(mnist.y_test, d.test_size, d.seed)
        x_train = pixels(mnist.x_train[:n], d.binarize, d.seed, "train")
        x_test = pixels(mnist.x_test[test], d.binarize, d.seed, "test")
        return cls(
            x_train=torch.from_numpy(to_float(x_train)).to(device),
            y_train=torch.from_numpy(y_train).to(device),
            x_test=torch.from_numpy(to_float(x_test)).to(device),
            y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)).to(device),
            sha256=mnist.sha256,
            source=mnist.source,
        )


def with_data(cfg: RunConfig, data: TensorData) -> RunConfig:
    """`cfg` as it will be recorded: the data's fingerprint and source, the device used.

    A config that names a device other than the data's, or a data fingerprint other than the
    data's, is an error: config.json must never record what did not happen.
    """
    used = data.x_train.device
    wanted = cfg.train.device
    if wanted != "auto" and not same_device(resolve_device(wanted), used):
        raise VaelabError(
            f"the settings ask for device {wanted} but the data is on {used}; "
            f"build the data with TensorData.from_mnist(mnist, cfg) to follow the settings"
        )
    if cfg.data.sha256 and data.sha256 and cfg.data.sha256 != data.sha256:
        raise VaelabError(
            f"the settings expect data with sha256 {cfg.data.sha256[:12]}..., "
            f"but {data.source or 'the data given'} has {data.sha256[:12]}..."
        )
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, device=str(used)),
        data=dataclasses.replace(
            cfg.data,
            sha256=data.sha256 or cfg.data.sha256,
            source=data.source or cfg.data.source,
        ),
    )


def compact_data(
    mnist: MNIST, cfg: RunConfig, device: torch.device | str = "cpu", images: Tensor | None = None
) -> TensorData:
    """`TensorData.from_mnist` with the training images left as uint8, converted per batch.

    A quarter of the memory, and one copy for every run: `images` (all of MNIST's training
    images on `device`, uint8) is sliced, not copied; without it the array is viewed in place.
    """
    data = TensorData.from_mnist(dataclasses.replace(mnist, x_train=mnist.x_train[:0]), cfg, device)
    n = len(data.y_train)
    if cfg.data.binarize == "static":  # its own fixed draw, not the shared grey images
        images = torch.from_numpy(pixels(mnist.x_train[:n], "static", cfg.data.seed, "train"))
        images = images.to(device)
    elif images is None:
        images = torch.from_numpy(mnist.x_train).to(device)
    return dataclasses.replace(data, x_train=images[:n])
