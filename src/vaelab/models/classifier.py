"""The fixed digit judge: an MLP that reads which digit an image shows.

Experiment 2 asks which digits an interpolation passes through. The article judged that by
eye; here a small classifier, trained once on the real training images and never changed,
reads every frame, so "1 -> 8 -> 6 -> 0" becomes a number that can be checked. It follows
scikit-learn's estimator API (parameters in `__init__`, `fit` returns `self`, learned state
ends in `_`) because it is a tool the experiments use, not one of the studied models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn
from torch.nn import functional as F

from vaelab.core import fileio
from vaelab.core.errors import VaelabError
from vaelab.core.folders import CLASSIFIER_PARAMS, CLASSIFIER_WEIGHTS
from vaelab.data.mnist import N_PIXELS

N_CLASSES = 10  # digits 0-9
WEIGHTS_FILE, PARAMS_FILE = CLASSIFIER_WEIGHTS, CLASSIFIER_PARAMS  # in its folder
PREDICT_BATCH = 4096  # images per forward pass when predicting; bounds memory, not results

ArrayLike = torch.Tensor | np.ndarray


def _as_images(x: ArrayLike) -> torch.Tensor:
    """(N, 784) float32 CPU tensor from a tensor or array of pixels in [0, 1]."""
    images = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    images = images.detach().to("cpu", torch.float32)
    if images.ndim != 2 or images.shape[1] != N_PIXELS:
        raise VaelabError(f"expected images of shape (N, {N_PIXELS}), got {tuple(images.shape)}")
    return images


def _as_labels(y: ArrayLike, n: int) -> torch.Tensor:
    """(N,) int64 CPU tensor of digits 0-9, matching the N images."""
    labels = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).to("cpu", torch.long)
    if labels.shape != (n,):
        raise VaelabError(f"expected {n} labels, got shape {tuple(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise VaelabError(f"labels must be digits 0-9, got {int(labels.min())}..{labels.max()}")
    return labels


class DigitClassifier:
    """MLP 784 -> hidden (ReLU) -> hidden (ReLU) -> 10: Adam with cosine decay, cross-entropy.

    Deterministic on CPU: the seed fixes the initial weights and the batch order, so the same
    data gives the same judge, and two studies read their frames with the same eyes.
    """

    def __init__(
        self,
        hidden: int = 256,
        epochs: int = 8,
        batch_size: int = 128,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden  # width of both hidden layers
        self.epochs = epochs  # passes over the training images
        self.batch_size = batch_size
        self.lr = lr  # Adam step size
        self.seed = seed  # initial weights and batch order

    def get_params(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
        }

    def _build(self) -> nn.Sequential:
        """A fresh network whose initial weights depend only on `seed`, not on global RNG state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return nn.Sequential(
                nn.Linear(N_PIXELS, self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, N_CLASSES),
            )

    def fit(self, x: ArrayLike, y: ArrayLike) -> DigitClassifier:
        """Train from scratch on images `x` (N, 784) in [0, 1] and digits `y` (N,)."""
        if self.epochs < 1 or self.batch_size < 1 or self.hidden < 1 or self.lr <= 0:
            raise VaelabError(f"invalid classifier settings {self.get_params()}")
        images = _as_images(x)
        labels = _as_labels(y, len(images))
        net = self._build()
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        # Cosine decay to zero over all steps: the judge ends at a settled point rather than
        # wherever the last noisy Adam step left it (on MNIST: 98.0-98.3% over seeds 0-2 vs
        # 97.6-98.0% at a constant rate, same 8 epochs).
        n_steps = self.epochs * -(-len(images) // self.batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps)
        shuffle = torch.Generator().manual_seed(self.seed)
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(images), generator=shuffle)
            for batch in order.split(self.batch_size):
                loss = F.cross_entropy(net(images[batch]), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        self.net_ = net.eval()
        return self

    def _check_fitted(self) -> nn.Sequential:
        net = getattr(self, "net_", None)
        if net is None:
            raise VaelabError("the digit classifier is not trained: call fit() or load() first")
        return net

    @torch.no_grad()
    def predict_proba(self, x: ArrayLike) -> np.ndarray:
        """(N, 10) float32 class probabilities."""
        net = self._check_fitted()
        images = _as_images(x)
        parts = [F.softmax(net(chunk), dim=1) for chunk in images.split(PREDICT_BATCH)]
        if not parts:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        return torch.cat(parts).numpy()

    def linear_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(weight (out, in), bias (out,)) per layer, a ReLU between each two: for other readers."""
        net = self._check_fitted()
        return [
            (m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
            for m in net
            if isinstance(m, nn.Linear)
        ]

    def predict(self, x: ArrayLike) -> np.ndarray:
        """(N,) int64: the digit each image most likely shows."""
        return self.predict_proba(x).argmax(axis=1).astype(np.int64)

    def score(self, x: ArrayLike, y: ArrayLike) -> float:
        """Accuracy on (x, y), the fraction of images read as their true digit."""
        labels = _as_labels(y, len(_as_images(x))).numpy()
        return float((self.predict(x) == labels).mean())

    def save(self, path: str | Path) -> None:
        """Write folder `path`: weights as safetensors, then params + weights' sha256 as JSON.

        The JSON is written last, so a folder whose JSON exists and whose hash matches is whole.
        """
        net = self._check_fitted()
        blob = save_tensors({k: v.detach().contiguous() for k, v in net.state_dict().items()})
        folder = Path(path)
        fileio.write_bytes(folder / WEIGHTS_FILE, blob)
        record = {"params": self.get_params(), "sha256": hashlib.sha256(blob).hexdigest()}
        fileio.write_json(folder / PARAMS_FILE, record)

    @classmethod
    def load(cls, path: str | Path) -> DigitClassifier:
        """Read a folder written by `save`; a missing, altered or corrupt one is a VaelabError."""
        folder = Path(path)
        try:
            record = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
            blob = (folder / WEIGHTS_FILE).read_bytes()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise VaelabError(f"cannot read digit classifier in {folder}: {err}") from None
        if not isinstance(record, dict) or hashlib.sha256(blob).hexdigest() != record.get("sha256"):
            raise VaelabError(f"digit classifier in {folder} is corrupt: weights do not match")
        try:
            model = cls(**record["params"])
            net = model._build()
            net.load_state_dict(load_tensors(blob))
        except (KeyError, TypeError, RuntimeError, SafetensorError) as err:
            raise VaelabError(f"digit classifier in {folder} is invalid: {err}") from None
        model.net_ = net.eval()
        return model
