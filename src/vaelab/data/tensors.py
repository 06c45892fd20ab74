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
from vaelab.data.splits import (
    pixels,
    semi_supervised_labels,
    test_subset,
    to_float,
    validation_split,
)


@dataclass(frozen=True)
class TensorData:
    """MNIST as float tensors on one device, split and labelled as a run's DataConfig says."""

    x_train: Tensor  # (N, 784) float32 in [0, 1]
    y_train: Tensor  # (N,) int64; -1 where the label is withheld
    x_test: Tensor  # (M, 784)
    y_test: Tensor  # (M,) int64, always the true labels
    sha256: str = ""  # content fingerprint of the MNIST these came from ("" unknown)
    source: str = ""  # where that MNIST came from
    # the validation images held out of training (data.validation), (V, 784), and their labels
    x_val: Tensor | None = None
    y_val: Tensor | None = None  # (V,) int64

    @classmethod
    def from_mnist(
        cls, mnist: MNIST, cfg: RunConfig, device: torch.device | str | None = None
    ) -> TensorData:
        """The run's split of `mnist`, on `device` (None: the device `cfg.train.device` names)."""
        return _split(mnist, cfg, resolve_device(cfg.train.device) if device is None else device)


@dataclass(frozen=True)
class TrainingSplit:
    """Which of the first N training images a run trains on, which it holds out for
    validation, and the labels it sees (-1 withheld) of those it trains on."""

    train: np.ndarray  # sorted indices into MNIST's training images
    validation: np.ndarray  # sorted indices, disjoint from `train`
    y_train: np.ndarray  # (len(train),) int64, -1 where the label is withheld


def training_split(y_all: np.ndarray, cfg: RunConfig) -> TrainingSplit:
    """The validation images (seeded by data.seed, the same for every run seed), and among the
    rest the labelled ones (data.n_labelled, seeded by data.label_seed or the run seed). Every
    run's split is made so, whatever its kind; only a kind that reads labels sees them."""
    d = cfg.data
    n = len(y_all) if d.train_size is None else min(d.train_size, len(y_all))
    train, held = validation_split(y_all[:n], d.validation, d.seed)
    label_seed = cfg.train.seed if d.label_seed is None else d.label_seed
    y_train = semi_supervised_labels(y_all[train], min(d.n_labelled, len(train)), label_seed)
    return TrainingSplit(train, held, y_train)


def _split(
    mnist: MNIST, cfg: RunConfig, device: torch.device | str, compact: Tensor | None = None
) -> TensorData:
    """`TensorData.from_mnist`; with `compact` (MNIST's training images as uint8 on `device`),
    the training images stay uint8, sliced from it where they can be."""
    d = cfg.data
    split = training_split(mnist.y_train, cfg)
    first = mnist.x_train[: len(split.train) + len(split.validation)]
    test = test_subset(mnist.y_test, d.test_size, d.seed)
    if compact is None:
        x_train = torch.from_numpy(to_float(pixels(first, d.binarize, d.seed, "train")))
    elif d.binarize == "static":  # its own fixed draw, not the shared grey images
        x_train = torch.from_numpy(pixels(first, "static", d.seed, "train"))
    else:
        x_train = compact[: len(first)]  # a view: one copy for every run
    if len(split.validation):
        x_train = x_train.to(device).index_select(0, torch.from_numpy(split.train).to(device))
    x_val = y_val = None
    if len(split.validation):
        held = pixels(mnist.x_train[split.validation], d.binarize, d.seed, "validation")
        x_val = torch.from_numpy(to_float(held)).to(device)
        y_val = torch.from_numpy(mnist.y_train[split.validation].astype(np.int64)).to(device)
    x_test = pixels(mnist.x_test[test], d.binarize, d.seed, "test")
    return TensorData(
        x_train=x_train.to(device),
        y_train=torch.from_numpy(split.y_train).to(device),
        x_test=torch.from_numpy(to_float(x_test)).to(device),
        y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)).to(device),
        sha256=mnist.sha256,
        source=mnist.source,
        x_val=x_val,
        y_val=y_val,
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
    images on `device`, uint8) is sliced, not copied (but where a validation split leaves
    gaps); without it the array is viewed in place.
    """
    images = torch.from_numpy(mnist.x_train).to(device) if images is None else images
    return _split(mnist, cfg, device, compact=images)
