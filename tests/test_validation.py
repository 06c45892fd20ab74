"""The validation split (data.validation): training images held out of training, labelled or
not, the same for every run seed, and M2's q(y|x) error on them logged beside the test error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from vaelab.config import checked
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.errors import VaelabError
from vaelab.data.splits import to_float
from vaelab.data.tensors import TensorData, compact_data, training_split
from vaelab.models import kinds
from vaelab.training.checkpoint import load_model
from vaelab.training.run import train


def _cfg(kind: str = "m2", run_seed: int = 0, validation: int = 100, **data) -> RunConfig:
    return RunConfig(
        ModelConfig(kind=kind, latent=2, hidden=16, embed=8),
        TrainConfig(epochs=2, batch_size=50, n_samples=1, seed=run_seed, checkpoint_every=1,
                    eval_every=1, device="cpu", classification_weight=1.0),
        DataConfig(**({"train_size": 300, "test_size": 60, "n_labelled": 40,
                       "validation": validation} | data)),
    )  # fmt: skip


def test_the_validation_images_are_held_out_class_balanced_and_the_same_for_every_seed(
    prototype_mnist,
):
    y = prototype_mnist.y_train
    first = training_split(y, _cfg(run_seed=0))
    assert len(first.validation) == 100 and len(first.train) == 200
    assert sorted([*first.train, *first.validation]) == list(range(300))  # disjoint, all
    assert np.bincount(y[first.validation], minlength=10).tolist() == [10] * 10
    labelled = first.train[first.y_train >= 0]
    assert len(labelled) == 40 and not set(labelled) & set(first.validation)
    assert (first.y_train[first.y_train >= 0] == y[labelled]).all()  # their true labels
    other = training_split(y, _cfg(run_seed=1))
    assert np.array_equal(other.validation, first.validation)  # data.seed chooses them
    assert not np.array_equal(other.train[other.y_train >= 0], labelled)  # the run seed, labels
    moved = training_split(y, _cfg(run_seed=0, seed=5))  # another data.seed
    assert not np.array_equal(moved.validation, first.validation)


def test_the_run_data_leave_the_validation_images_out(prototype_mnist):
    cfg = _cfg()
    split = training_split(prototype_mnist.y_train, cfg)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    pixels = torch.from_numpy(to_float(prototype_mnist.x_train))
    assert torch.equal(data.x_train, pixels[split.train])
    assert torch.equal(data.x_val, pixels[split.validation])
    assert torch.equal(data.y_val, torch.from_numpy(prototype_mnist.y_train[split.validation]))
    compact = compact_data(prototype_mnist, cfg)
    assert compact.x_train.dtype == torch.uint8
    assert torch.equal(compact.x_train.float() / 255, data.x_train)
    assert torch.equal(compact.y_train, data.y_train) and torch.equal(compact.x_val, data.x_val)
    none = TensorData.from_mnist(prototype_mnist, _cfg(validation=0))
    assert none.x_val is None and len(none.x_train) == 300


def test_m2_logs_its_validation_error_each_epoch(prototype_mnist, tmp_path):
    cfg = _cfg()
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "m2")
    rows = [json.loads(r) for r in (tmp_path / "m2/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all("validation_error" in r for r in rows)
    model, _ = load_model(tmp_path / "m2", "cpu")
    wrong = (model.predict_proba(data.x_val).argmax(-1) != data.y_val).sum()
    assert rows[-1]["validation_error"] == int(wrong) / 100
    train(_cfg("vae"), TensorData.from_mnist(prototype_mnist, _cfg("vae")), tmp_path / "vae")
    rows = (tmp_path / "vae/metrics.jsonl").read_text()
    assert "validation_error" not in rows  # no classifier to read it


@pytest.mark.parametrize(
    "data, message",
    [
        ({"validation": -1}, "data.validation must be >= 0"),
        ({"validation": 300}, "must leave some of the 300"),
        ({"validation": 270}, "fewer than the 40 labelled images"),
        ({"train_size": None, "validation": 60000}, "must leave some of the 60000"),
    ],
)
def test_a_bad_validation_split_is_one_line_before_any_work(data, message):
    with pytest.raises(VaelabError, match=message):
        checked(_cfg(**data).validate())  # the settings' gate, where kinds are known


@pytest.mark.parametrize("kind", kinds.names())
def test_only_a_kind_that_reads_labels_needs_its_labelled_images_left(kind):
    cfg = dataclasses.replace(_cfg(validation=270), model=ModelConfig(kind=kind, latent=2))
    if kinds.record(kind).labels:
        with pytest.raises(VaelabError, match="fewer than the 40 labelled images"):
            checked(cfg.validate())
    else:
        assert checked(cfg.validate()) == cfg


def test_data_smaller_than_its_validation_split_is_one_line(prototype_mnist, tmp_path):
    cfg = _cfg(train_size=None, validation=390)  # the data hold 400 images: 10 left, 40 asked
    data = TensorData.from_mnist(prototype_mnist, cfg)
    assert int((data.y_train >= 0).sum()) == 10  # every image left is labelled
    with pytest.raises(VaelabError, match="leaves 10 training images, fewer than the 40"):
        train(cfg, data, tmp_path / "m2")  # before any work
    assert not (tmp_path / "m2").exists() or not any((tmp_path / "m2").iterdir())
    with pytest.raises(VaelabError, match="must leave some of the 400"):
        TensorData.from_mnist(prototype_mnist, _cfg(train_size=None, validation=400))
