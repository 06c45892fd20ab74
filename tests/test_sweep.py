"""Sweeps of C and k: one grid per point with the AE shared, C trained in one group, the claims
at every point, the rate-distortion rows, and binarised pixels."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from helpers_reliability import MICRO_STUDY, write_npz
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, StudyConfig, TrainConfig
from vaelab.data.splits import binarized, pixels
from vaelab.data.tensors import TensorData, compact_data
from vaelab.study.pipeline import run_study
from vaelab.training.identity import run_name
from vaelab.training.run import train
from vaelab.training.trainer import TrainingRun, train_group


def _toml(root: Path, weights: list[float], samples: list[int] | None = None) -> Path:
    data = write_npz(root / "m.npz") if not (root / "m.npz").exists() else root / "m.npz"
    text = MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n')
    sweep = f"kl_weights = {weights}\n" + (f"samples = {samples}\n" if samples else "")
    text = text.replace("latents = [2, 4]\n", "latents = [2, 4]\n" + sweep, 1)
    path = root / f"sweep-{len(weights)}-{len(samples or [])}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    out = root / "study"
    run_study(str(_toml(root, [0.1, 1.0])), out, console=Console(file=io.StringIO()))
    return root, out, json.loads((out / "results.json").read_text())


def test_the_ae_is_shared_and_each_c_has_its_own_vaes(swept):
    _, out, results = swept
    names = sorted(p.name for p in (out / "models").iterdir())
    assert sum(n.startswith("ae-") for n in names) == 2  # z = 2, 4: one AE each, not per C
    assert sum(n.startswith("vae-") for n in names) == 4  # z = 2, 4 at C = 0.1 and C = 1
    configs = [json.loads((out / "models" / n / "config.json").read_text()) for n in names]
    assert sorted({c["train"]["kl_weight"] for c in configs if c["model"]["kind"] == "vae"}) == [
        0.1,
        1.0,
    ]
    assert set(results["training"]) == {
        "ae-z2-seed0", "ae-z4-seed0", "vae-z2-seed0", "vae-z4-seed0",
        "vae-z2-seed0-C1-k5", "vae-z4-seed0-C1-k5",
    }  # fmt: skip


def test_claims_are_judged_at_every_point(swept):
    _, _, results = swept
    cos = results["claims_over_settings"]
    assert cos["points"] == [{"kl_weight": 0.1, "n_samples": 5}, {"kl_weight": 1.0, "n_samples": 5}]
    assert cos["headline"] == 0
    final = {str(c["number"]): c["verdict"] for c in results["claims"]}
    assert {n: v[cos["headline"]] for n, v in cos["verdicts"].items()} == final
    assert all(len(v) == 2 and all(v) for v in cos["verdicts"].values())
    assert all(len(r) == 2 and all(r) for r in cos["reasons"].values())
    assert cos["judged"] == cos["headline"] and cos["descriptive"] == [1]
    assert "Only the column of C = 0.1, k = 5 is a verdict" in cos["caption"]
    assert all(len(row) == 2 for row in cos["effects"].values())


def test_rate_distortion_rows_add_up_and_a_larger_c_spends_less_rate(swept):
    _, out, results = swept
    rows = [r for r in results["experiments"]["rate_distortion"]["rows"] if r["kind"] == "vae"]
    assert len(rows) == 4
    for r in rows:  # distortion + rate = -ELBO, and the IWAE bound is no lower than the ELBO
        assert r["rate"] + r["distortion"] == pytest.approx(-r["elbo"], rel=1e-9)
        assert r["iwae"] >= r["elbo_on_iwae_images"] - 1e-3  # on the same images
        assert 0 <= r["active_units"] <= r["z"]
    for z in (2, 4):
        rate = {r["kl_weight"]: r["rate"] for r in rows if r["z"] == z}
        assert rate[1.0] < rate[0.1]  # C weighs the KL: a heavier weight, a smaller KL
    assert [f["path"] for f in results["figures"]["rate_distortion"]] == [
        "figures/rate_distortion_vae.png"
    ]
    html = (out / "report.html").read_text()
    assert "C = 0.1, k = 5" in html and "C = 1.0, k = 5" in html and "rate–distortion" in html
    assert 'alt="each comparison at every C and k"' in html


def test_adding_a_value_of_c_trains_only_its_models(swept):
    root, out, _ = swept
    before = {
        p.parent.name: p.stat().st_mtime_ns for p in (out / "models").glob("*/model.safetensors")
    }
    log = io.StringIO()
    run_study(str(_toml(root, [0.1, 1.0, 0.01])), out, console=Console(file=log, width=200))
    after = {
        p.parent.name: p.stat().st_mtime_ns for p in (out / "models").glob("*/model.safetensors")
    }
    assert {n: after[n] for n in before} == {n: before[n] for n in before}  # untouched
    new = set(after) - set(before)
    assert len(new) == 2 and all(n.startswith("vae-") for n in new)
    results = json.loads((out / "results.json").read_text())
    assert len(results["claims_over_settings"]["points"]) == 3


def _cfg(c: float, z: int, **data) -> RunConfig:
    return RunConfig(
        ModelConfig(kind="vae", latent=z, hidden=16),
        TrainConfig(epochs=2, batch_size=50, kl_weight=c, n_samples=2, device="cpu"),
        DataConfig(train_size=200, test_size=50, **data),
    )


def test_members_with_different_c_in_one_group_equal_each_trained_alone(prototype_mnist, tmp_path):
    cfgs = [_cfg(0.01, 2), _cfg(0.1, 3), _cfg(1.0, 2)]
    members = [
        TrainingRun(c, compact_data(prototype_mnist, c), tmp_path / f"g{i}")
        for i, c in enumerate(cfgs)
    ]
    train_group(members)
    for i, c in enumerate(cfgs):
        train(c, TensorData.from_mnist(prototype_mnist, c), tmp_path / f"a{i}")
        a, g = (
            load_file(tmp_path / f"a{i}/model.safetensors"),
            load_file(tmp_path / f"g{i}/model.safetensors"),
        )
        assert max(float((a[k] - g[k]).abs().max()) for k in a) <= 1e-4  # as for other groups
    w0, w2 = (
        load_file(tmp_path / "g0/model.safetensors"),
        load_file(tmp_path / "g2/model.safetensors"),
    )
    assert (w0["enc_mu.weight"] - w2["enc_mu.weight"]).abs().max() > 1e-3  # C changed them


def test_binarised_pixels_are_a_seeded_bernoulli_draw():
    x = np.tile(np.arange(256, dtype=np.uint8), (400, 1))
    a, b = binarized(x, 3), binarized(x, 3)
    assert np.array_equal(a, b) and set(np.unique(a)) == {0, 255}
    assert not np.array_equal(a, binarized(x, 4))
    share = (a == 255).mean(axis=0)  # each grey level is on with probability level / 255
    assert np.abs(share - np.arange(256) / 255).max() < 4 * 0.5 / np.sqrt(400)
    assert pixels(x, "none", 0, "test") is x and pixels(x, "dynamic", 0, "train") is x
    assert np.array_equal(pixels(x, "dynamic", 0, "test"), pixels(x, "static", 0, "test"))


def test_dynamic_binarisation_draws_anew_each_epoch_and_resumes_bit_for_bit(
    prototype_mnist, tmp_path
):
    cfg = _cfg(1.0, 2, binarize="dynamic")
    data = TensorData.from_mnist(prototype_mnist, cfg)
    assert set(torch.unique(data.x_test).tolist()) <= {0.0, 1.0}  # one fixed draw of the test
    train(cfg, data, tmp_path / "whole")
    four = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1))
    train(four, data, tmp_path / "cut")
    train(cfg, data, tmp_path / "cut", resume=True)
    a, b = (
        load_file(tmp_path / "whole/model.safetensors"),
        load_file(tmp_path / "cut/model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    grey = _cfg(1.0, 2)
    assert run_name(grey) != run_name(cfg)  # binarised runs are other runs
    static = _cfg(1.0, 2, binarize="static")
    assert run_name(static) != run_name(cfg)


def test_a_single_point_names_its_runs_as_before():
    cfg = StudyConfig()
    assert cfg.points() == ((0.1, 5),) and cfg.at(cfg.headline()) == cfg
    assert StudyConfig(kl_weights=(1.0, 0.1)).headline() == (0.1, 5)
    assert StudyConfig(kl_weights=(1.0, 0.5)).headline() == (1.0, 5)


def test_the_training_table_keeps_the_points_apart(swept):
    from vaelab.report.tables import training_rows

    _, out, results = swept
    rows = {
        (r["kind"], r["latent"], r["point"]): r["seeds"] for r in training_rows(results["training"])
    }
    assert rows[("vae", 2, "C = 1, k = 5")] == 1 and rows[("vae", 2, "C = 0.1, k = 5")] == 1
    assert rows[("ae", 2, "")] == 1  # the shared AE: one row, no point
    assert "VAE (C = 1, k = 5)" in (out / "report.html").read_text()


def test_a_conv_ae_in_a_sweep_is_one_run_and_one_record_as_the_ae_is(tmp_path):
    """An AE has neither C nor k whatever its family: one folder and one training record at
    every point of a sweep, where each of the conv VAE's points has its own."""
    path = _toml(tmp_path, [0.1, 1.0])
    text = path.read_text().replace('models = ["ae", "vae"]', 'models = ["conv-ae", "conv-vae"]')
    path.write_text(text.replace("latents = [2, 4]", "latents = [2]").replace("[2, 4]", "[2]"))
    out = tmp_path / "study"
    run_study(str(path), out, console=Console(file=io.StringIO()))
    results = json.loads((out / "results.json").read_text())
    assert set(results["training"]) == {
        "conv-ae-z2-seed0", "conv-vae-z2-seed0", "conv-vae-z2-seed0-C1-k5",
    }  # fmt: skip
    assert "point" not in results["training"]["conv-ae-z2-seed0"]
    assert sum(p.name.startswith("conv-ae-") for p in (out / "models").iterdir()) == 1
