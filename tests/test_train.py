"""The trainer: it learns, it is repeatable, and a killed run resumes bit for bit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_prototype_mnist
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import read_metrics
from vaelab.data.tensors import TensorData
from vaelab.evaluation.measures import evaluate
from vaelab.training.run import Trainer, train

SRC = str(Path(__file__).resolve().parents[1] / "src")


def config(kind="vae", epochs=3, **train):
    return RunConfig(
        model=ModelConfig(kind=kind, latent=4, hidden=32, embed=16),
        train=TrainConfig(epochs=epochs, batch_size=50, checkpoint_every=1, eval_every=1, **train),
        data=DataConfig(test_size=None, n_labelled=200),
    )


def mean_image_nll(x: torch.Tensor, x_fit: torch.Tensor) -> float:
    """NLL of a model that ignores its input and predicts each pixel's training mean."""
    p = x_fit.mean(0).clamp(1e-4, 1 - 1e-4)
    return -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1).mean().item()


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_training_beats_the_mean_image(kind, prototype_mnist, tmp_path):
    cfg = config(kind, epochs=15, lr=3e-3)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    model = train(cfg, data, tmp_path / "run")
    nll = evaluate(model, data.x_test, data.y_test)["nll"]
    baseline = mean_image_nll(data.x_test, data.x_train)
    # 10 prototypes with 5% flips: knowing which prototype gives ~ 784 * H(0.05) = 156 nats,
    # the mean image ~ 350; an untrained or broken model is nowhere near the first.
    assert nll < 0.7 * baseline, (nll, baseline)
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == list(range(1, 16))
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_cvae_sees_only_the_labelled_subset(prototype_mnist):
    data = TensorData.from_mnist(prototype_mnist, config("cvae"))
    assert int((data.y_train >= 0).sum()) == 200
    assert int((TensorData.from_mnist(prototype_mnist, config("vae")).y_train >= 0).sum()) == 400


def weights(run_dir: Path) -> bytes:
    return (run_dir / "model.safetensors").read_bytes()


def test_same_seed_same_weights_other_seed_other_weights(prototype_mnist, tmp_path):
    cfg = config(epochs=2)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        other = RunConfig(cfg.model, TrainConfig(**{**cfg.train.__dict__, "seed": seed}), cfg.data)
        train(other, data, tmp_path / name)
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    assert weights(tmp_path / "a") != weights(tmp_path / "c")


def test_resume_in_process_matches_an_uninterrupted_run(prototype_mnist, tmp_path):
    cfg = config("cvae", epochs=4)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "straight")
    short = RunConfig(cfg.model, TrainConfig(**{**cfg.train.__dict__, "epochs": 2}), cfg.data)
    train(short, data, tmp_path / "split")
    train(cfg, data, tmp_path / "split", resume=True)
    assert weights(tmp_path / "split") == weights(tmp_path / "straight")
    rows = read_metrics(tmp_path / "split")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    straight = read_metrics(tmp_path / "straight")
    assert [r["loss"] for r in rows] == [r["loss"] for r in straight]


def _train_command(npz: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vaelab",
        "train",
        "--data",
        npz,
        "--model",
        "vae",
        "--z",
        "4",
        "--epochs",
        "8",
        "--checkpoint-every",
        "1",
        "--eval-every",
        "100",
        "--test-size",
        "100",
        "--out",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


def test_kill_9_then_resume_gives_the_same_weights_bit_for_bit(tmp_path):
    m = make_prototype_mnist(n_train=2000, n_test=100)
    npz = str(tmp_path / "mnist.npz")
    np.savez(npz, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    env = {**os.environ, "PYTHONPATH": SRC}
    subprocess.run(
        _train_command(npz, tmp_path / "straight"), env=env, check=True, capture_output=True
    )

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_command(npz, run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "epoch-000003.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before epoch 3"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model.safetensors").exists()  # it really was cut short

    subprocess.run(_train_command(npz, run, "--resume"), env=env, check=True, capture_output=True)
    assert weights(run) == weights(tmp_path / "straight")
    assert [r["epoch"] for r in read_metrics(run)] == list(range(1, 9))


def test_resume_without_a_checkpoint_starts_over(prototype_mnist, tmp_path):
    cfg = config(epochs=2)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(to_dict(cfg)))
    train(cfg, data, tmp_path / "run", resume=True)
    train(cfg, data, tmp_path / "fresh")
    assert weights(tmp_path / "run") == weights(tmp_path / "fresh")


def test_an_existing_run_is_never_overwritten(prototype_mnist, tmp_path):
    cfg = config(epochs=1)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "run")
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(VaelabError, match="already holds a run"):
        train(cfg, data, tmp_path / "run")
    other = config(epochs=1, lr=0.01)
    with pytest.raises(VaelabError, match="other settings"):
        train(other, data, tmp_path / "run", resume=True)
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before


def test_a_corrupt_checkpoint_is_reported_not_used(prototype_mnist, tmp_path):
    cfg = config(epochs=2)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    short = RunConfig(cfg.model, TrainConfig(**{**cfg.train.__dict__, "epochs": 1}), cfg.data)
    train(short, data, tmp_path / "run")
    blob = tmp_path / "run" / "checkpoints" / "epoch-000001.safetensors"
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(VaelabError, match="corrupt"):
        Trainer(cfg, data, tmp_path / "run").fit(resume=True)


def test_resuming_with_fewer_epochs_than_trained_is_refused(prototype_mnist, tmp_path):
    data = TensorData.from_mnist(prototype_mnist, config(epochs=3))
    train(config(epochs=3), data, tmp_path / "run")
    before = weights(tmp_path / "run")
    with pytest.raises(VaelabError, match="already trained 3 epochs"):
        train(config(epochs=2), data, tmp_path / "run", resume=True)
    assert weights(tmp_path / "run") == before


def test_a_checkpoint_that_does_not_fit_the_model_is_one_clear_error(prototype_mnist, tmp_path):
    data = TensorData.from_mnist(prototype_mnist, config(epochs=1))
    train(config(epochs=1), data, tmp_path / "run")
    record_path = tmp_path / "run" / "checkpoints" / "epoch-000001.json"
    record = json.loads(record_path.read_text())
    del record["rng"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(VaelabError, match="does not fit"):
        train(config(epochs=2), data, tmp_path / "run", resume=True)
