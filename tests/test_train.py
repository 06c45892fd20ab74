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
        train=TrainConfig(
            **{"epochs": epochs, "batch_size": 50, "checkpoint_every": 1, "eval_every": 1} | train
        ),
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
    vae = TensorData.from_mnist(prototype_mnist, config("vae"))  # the same split: the settings'
    assert torch.equal(vae.y_train, data.y_train)  # (a VAE's batches carry no labels)


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
        "--steps",
        "150",  # 7.5 epochs of 20 steps: the last checkpoint falls in mid-epoch
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
    while not (run / "checkpoints" / "step-000000060.json").exists():  # epoch 3
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before epoch 3"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model.safetensors").exists()  # it really was cut short

    subprocess.run(_train_command(npz, run, "--resume"), env=env, check=True, capture_output=True)
    assert weights(run) == weights(tmp_path / "straight")
    assert [r["epoch"] for r in read_metrics(run)] == list(range(1, 9))
    assert [r["step"] for r in read_metrics(run)] == [20, 40, 60, 80, 100, 120, 140, 150]


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
    blob = tmp_path / "run" / "checkpoints" / "step-000000008.safetensors"
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
    record_path = tmp_path / "run" / "checkpoints" / "step-000000008.json"
    record = json.loads(record_path.read_text())
    del record["rng"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(VaelabError, match="does not fit"):
        train(config(epochs=2), data, tmp_path / "run", resume=True)


def steps_config(steps=None, epochs=None, kind="cvae", **train):
    cfg = config(kind, epochs=epochs, **train)  # 400 images in batches of 50: 8 steps an epoch
    return RunConfig(cfg.model, TrainConfig(**{**cfg.train.__dict__, "steps": steps}), cfg.data)


def rows_less_seconds(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(run_dir)]


def test_a_run_counts_steps_and_ends_in_mid_epoch(prototype_mnist, tmp_path):
    cfg = steps_config(steps=20)
    assert cfg.train.total_steps(400) == 20 and cfg.train.steps_per_epoch(400) == 8
    assert RunConfig().train.total_steps(60000) == 1000  # neither set: the article's length
    train(cfg, TensorData.from_mnist(prototype_mnist, cfg), tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 8), (2, 16), (3, 20)]
    assert "test_loss" in rows[-1]  # the last step is always evaluated
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.json"))
    assert names == ["step-000000016.json", "step-000000020.json"]  # the newest two
    record = json.loads((tmp_path / "run" / "checkpoints" / names[-1]).read_text())
    assert (record["step"], record["epoch"], record["within_epoch"]) == (20, 2, 4)


@pytest.mark.parametrize("kind", ["cvae", "ae"])
def test_extending_a_finished_run_from_mid_epoch_equals_one_run(kind, prototype_mnist, tmp_path):
    """1000 steps, then on to convergence: the weights and the log of one unbroken run."""
    short, longer, whole = steps_config(20, kind=kind), steps_config(44, kind=kind), None
    whole = steps_config(epochs=7, kind=kind)  # 56 steps
    data = TensorData.from_mnist(prototype_mnist, short)
    for cfg in (longer, whole):
        train(cfg, data, tmp_path / f"straight{cfg.train.total_steps(400)}")
    train(short, data, tmp_path / "run")
    train(longer, data, tmp_path / "run", resume=True)  # mid-epoch to mid-epoch
    assert weights(tmp_path / "run") == weights(tmp_path / "straight44")
    assert rows_less_seconds(tmp_path / "run") == rows_less_seconds(tmp_path / "straight44")
    train(whole, data, tmp_path / "run", resume=True)  # steps to epochs
    assert weights(tmp_path / "run") == weights(tmp_path / "straight56")
    assert rows_less_seconds(tmp_path / "run") == rows_less_seconds(tmp_path / "straight56")
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [8 * e for e in range(1, 8)]
    with pytest.raises(VaelabError, match="already trained 56 steps, more than the 44 steps"):
        train(longer, data, tmp_path / "run", resume=True)


def test_milestones_fall_at_250_times_powers_of_two_and_the_last_step(prototype_mnist, tmp_path):
    from vaelab.training import checkpoint

    cfg = steps_config(steps=520, kind="vae", checkpoint_every=1000, eval_every=1000)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "run")
    found = checkpoint.load_milestones(tmp_path / "run", steps_per_epoch=8)
    assert list(found) == [250, 500, 520]
    short = steps_config(steps=250, kind="vae", checkpoint_every=1000, eval_every=1000)
    train(short, data, tmp_path / "short")  # its last step is the longer run's first milestone
    at_250 = {k: v.detach() for k, v in found[250].state_dict().items()}
    final = checkpoint.load_model(tmp_path / "short")[0].state_dict()
    assert all(torch.equal(at_250[k], final[k]) for k in final)
    assert [checkpoint.is_milestone(s, 30000) for s in (250, 500, 750, 1000, 2000, 3000)] == [
        True, True, False, True, True, False,
    ]  # fmt: skip


def test_a_folder_from_before_steps_still_resumes_and_reads(prototype_mnist, tmp_path):
    """Epoch-named checkpoints and milestones, records and log rows without a step."""
    from vaelab.training import checkpoint

    old, new = steps_config(epochs=2, kind="vae"), steps_config(epochs=4, kind="vae")
    data = TensorData.from_mnist(prototype_mnist, old)
    train(new, data, tmp_path / "straight")
    run = tmp_path / "run"
    train(old, data, run)
    for folder in (run / "checkpoints", run / "milestones"):
        for path in folder.glob("step-*.json"):
            step = json.loads(path.read_text())["step"]
            stem = f"epoch-{step // 8:06d}"
            path.with_suffix(".safetensors").rename(folder / f"{stem}.safetensors")
            record = json.loads(path.read_text())
            record["epoch"] = record.pop("step") // 8
            path.unlink()
            (folder / f"{stem}.json").write_text(json.dumps(record))
    rows = [{k: v for k, v in r.items() if k != "step"} for r in read_metrics(run)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert list(checkpoint.load_milestones(run, steps_per_epoch=8)) == [16]
    train(new, data, run, resume=True)
    assert weights(run) == weights(tmp_path / "straight")
    assert sorted(p.name for p in (run / "milestones").glob("*.json")) == [
        "epoch-000002.json",
        "step-000000032.json",
    ]
    assert list(checkpoint.load_milestones(run, steps_per_epoch=8)) == [16, 32]
