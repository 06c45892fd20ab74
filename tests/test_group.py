"""Grouped training: a model trained in a group is the model trained alone; milestones,
the non-finite stop and clean stops on Ctrl-C / SIGTERM."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import make_prototype_mnist
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, read_metrics
from vaelab.data.tensors import TensorData, compact_data
from vaelab.training import checkpoint
from vaelab.training.reporter import SilentReporter
from vaelab.training.run import train
from vaelab.training.trainer import TrainingRun, train_group

SRC = str(Path(__file__).resolve().parents[1] / "src")
# Grouped vs alone, after 2 epochs on tiny data: most weights agree to ~3e-8; Adam divides by
# sqrt(v), so where a gradient is near zero its rounding moves a weight by up to ~1e-5 (lr 1e-3).
TOLERANCE = 5e-5  # max abs weight difference
TYPICAL = 1e-6  # ... and 99% of weights within this


def config(kind="vae", z=4, seed=0, epochs=2, **train_args):
    return RunConfig(
        model=ModelConfig(kind=kind, latent=z, hidden=32, embed=16),
        train=TrainConfig(
            **{"epochs": epochs, "batch_size": 50, "checkpoint_every": 1, "eval_every": 1}
            | {"seed": seed, **train_args}
        ),
        data=DataConfig(test_size=None, n_labelled=200),
    )


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model.safetensors")


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def share_beyond(a: dict, b: dict, tol: float) -> float:
    diffs = torch.cat([(a[k] - b[k]).abs().reshape(-1) for k in a])
    return float((diffs > tol).float().mean())


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_a_model_trained_in_a_group_equals_it_trained_alone(kind, prototype_mnist, tmp_path):
    cfgs = [config(kind, z=2, seed=0), config(kind, z=5, seed=1), config(kind, z=3, seed=2)]
    members = [
        TrainingRun(c, compact_data(prototype_mnist, c), tmp_path / f"group{i}")
        for i, c in enumerate(cfgs)
    ]
    train_group(members)
    for i, c in enumerate(cfgs):
        train(c, TensorData.from_mnist(prototype_mnist, c), tmp_path / f"alone{i}")
        alone, grouped = weights(tmp_path / f"alone{i}"), weights(tmp_path / f"group{i}")
        assert max_diff(alone, grouped) <= TOLERANCE
        assert share_beyond(alone, grouped, TYPICAL) < 0.01
        rows_a, rows_g = read_metrics(tmp_path / f"alone{i}"), read_metrics(tmp_path / f"group{i}")
        assert [r["loss"] for r in rows_a] == pytest.approx([r["loss"] for r in rows_g], rel=1e-5)
    # seeds differ, so the members really are different models
    w0, w2 = weights(tmp_path / "group0"), weights(tmp_path / "group2")
    assert (w0["enc_hidden.weight"] - w2["enc_hidden.weight"]).abs().max() > 0.01


def test_a_group_checkpoint_resumes_alone_and_in_process_bit_for_bit(prototype_mnist, tmp_path):
    cfgs = [config(z=2, seed=0, epochs=4), config(z=4, seed=1, epochs=4)]
    data = [compact_data(prototype_mnist, c) for c in cfgs]

    def group(configs, name):
        return [TrainingRun(c, data[i], tmp_path / f"{name}{i}") for i, c in enumerate(configs)]

    train_group(group(cfgs, "straight"))
    short = [dataclasses.replace(c, train=dataclasses.replace(c.train, epochs=2)) for c in cfgs]
    train_group(group(short, "split"))
    train_group(group(cfgs, "split"), resume=True)
    for i in range(2):
        assert (tmp_path / f"split{i}/model.safetensors").read_bytes() == (
            tmp_path / f"straight{i}/model.safetensors"
        ).read_bytes()
        assert [r["epoch"] for r in read_metrics(tmp_path / f"split{i}")] == [1, 2, 3, 4]
    # a member checkpointed in a group goes on alone
    alone = tmp_path / "alone"
    train(short[1], data[1], alone)
    train(cfgs[1], data[1], alone, resume=True)
    assert max_diff(weights(alone), weights(tmp_path / "straight1")) <= TOLERANCE


GROUP_SCRIPT = """
import sys, numpy as np
from pathlib import Path
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data import MNIST
from vaelab.data.tensors import compact_data
from vaelab.training.trainer import TrainingRun, train_group
a = np.load(sys.argv[1])
mnist = MNIST(a["x_train"], a["y_train"], a["x_test"], a["y_test"], "npz")
out, resume = Path(sys.argv[2]), sys.argv[3] == "resume"
cfgs = [RunConfig(ModelConfig(kind="cvae", latent=z, hidden=32, embed=16),
                  TrainConfig(epochs=8, checkpoint_every=1, eval_every=100, seed=z, device="cpu"),
                  DataConfig(test_size=100, n_labelled=500)) for z in (2, 4)]
train_group([TrainingRun(c, compact_data(mnist, c), out / f"m{i}") for i, c in enumerate(cfgs)],
            resume=resume)
"""


def test_kill_9_then_resume_a_group_gives_the_same_weights_bit_for_bit(tmp_path):
    m = make_prototype_mnist(n_train=2000, n_test=100)
    npz = str(tmp_path / "mnist.npz")
    np.savez(npz, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    env = {**os.environ, "PYTHONPATH": SRC}
    run = [sys.executable, "-c", GROUP_SCRIPT, npz]
    subprocess.run([*run, str(tmp_path / "straight"), "new"], env=env, check=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*run, str(killed), "new"], env=env)
    deadline = time.monotonic() + 120
    while not (killed / "m1" / "checkpoints" / "step-000000060.json").exists():  # epoch 3
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before epoch 3"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "m0" / "model.safetensors").exists()
    subprocess.run([*run, str(killed), "resume"], env=env, check=True)
    for name in ("m0", "m1"):
        assert (killed / name / "model.safetensors").read_bytes() == (
            tmp_path / "straight" / name / "model.safetensors"
        ).read_bytes()
        assert [r["epoch"] for r in read_metrics(killed / name)] == list(range(1, 9))


def test_milestones_at_250_steps_times_powers_of_two_and_the_last(prototype_mnist, tmp_path):
    cfg = config(epochs=70, checkpoint_every=100, eval_every=100)  # 8 steps an epoch: 560
    train(cfg, TensorData.from_mnist(prototype_mnist, cfg), tmp_path / "run")
    found = checkpoint.load_milestones(tmp_path / "run", steps_per_epoch=8)
    assert list(found) == [250, 500, 560]
    final = weights(tmp_path / "run")
    assert max_diff({k: v.detach() for k, v in found[560].state_dict().items()}, final) == 0
    assert max_diff({k: v.detach() for k, v in found[250].state_dict().items()}, final) > 0
    blob = tmp_path / "run" / "milestones" / "step-000000500.safetensors"
    blob.write_bytes(blob.read_bytes()[:-4])
    with pytest.raises(VaelabError, match="corrupt"):
        checkpoint.load_milestones(tmp_path / "run", steps_per_epoch=8)


def test_a_diverging_run_stops_with_epoch_and_step_and_saves_nothing_of_it(
    prototype_mnist, tmp_path
):
    cfg = config(epochs=2)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "run")
    x = data.x_train.clone()
    x[123] = float("nan")  # lands in one batch of epoch 3
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=4))
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    where = r"diverged at epoch 3, step [1-8] \(step (1[7-9]|2[0-4]) of 32"  # 8 steps an epoch
    with pytest.raises(VaelabError, match=where):
        train(longer, dataclasses.replace(data, x_train=x), tmp_path / "run", resume=True)
    assert RunFolder(tmp_path / "run").latest_step(8) == 16
    record, tensors = checkpoint.latest_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(t).all() for t in tensors.values())
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2]
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run" / "milestones").glob("*.json")) == [
        "step-000000016.json",  # the last step of the run that finished; nothing of epoch 3
    ]


def test_a_huge_learning_rate_is_stopped_not_saved(prototype_mnist, tmp_path):
    cfg = config("vae", z=2, epochs=3, lr=1e6)
    with pytest.raises(VaelabError, match="diverged at epoch 1, step"):
        train(cfg, TensorData.from_mnist(prototype_mnist, cfg), tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert RunFolder(tmp_path / "run").latest_step(8) == 0


class StopAt(SilentReporter):
    """Interrupts training at a given step of a given epoch, as Ctrl-C or SIGTERM would."""

    def __init__(self, epoch: int, step: int, how: str) -> None:
        self.epochs, self.steps, self.at, self.how = 0, 0, (epoch, step), how

    def epoch(self, metrics):
        self.epochs, self.steps = metrics["epoch"], 0

    def step(self, running_loss):
        self.steps += 1
        if (self.epochs + 1, self.steps) == self.at:
            if self.how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_stop_keeps_the_last_finished_epoch(how, prototype_mnist, tmp_path):
    cfg = config("cvae", epochs=5, checkpoint_every=100)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "straight")
    before = signal.getsignal(signal.SIGTERM)  # the default, or what an earlier test set
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data, tmp_path / "run", reporter=StopAt(epoch=4, step=3, how=how))
    assert RunFolder(tmp_path / "run").latest_step(8) == 24  # epoch 3
    assert signal.getsignal(signal.SIGTERM) is before  # the training's own handler is gone
    train(cfg, data, tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == (
        tmp_path / "straight" / "model.safetensors"
    ).read_bytes()
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3, 4, 5]


def test_compact_data_keeps_one_uint8_copy_that_converts_exactly(prototype_mnist):
    cfgs = [config("cvae", z=2), config("cvae", z=4, seed=1)]
    images = torch.from_numpy(prototype_mnist.x_train)
    compact = [compact_data(prototype_mnist, c, "cpu", images) for c in cfgs]
    full = TensorData.from_mnist(prototype_mnist, cfgs[0])
    assert compact[0].x_train.dtype == torch.uint8
    assert compact[0].x_train.data_ptr() == compact[1].x_train.data_ptr() == images.data_ptr()
    assert torch.equal(compact[0].x_train.float().div_(255.0), full.x_train)
    assert torch.equal(compact[0].y_train, full.y_train)
    assert torch.equal(compact[0].x_test, full.x_test)


def test_sigterm_to_the_cli_exits_130_keeping_the_last_finished_epoch(tmp_path):
    m = make_prototype_mnist(n_train=2000, n_test=100)
    npz = str(tmp_path / "mnist.npz")
    np.savez(npz, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "vaelab", "train", "--data", npz, "--model", "vae"]
    command += ["--z", "4", "--epochs", "500", "--checkpoint-every", "1000", "--eval-every"]
    command += ["1000", "--test-size", "100", "--out", str(run), "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(read_metrics(run)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "run ended early"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err.decode()
    saved = RunFolder(run).latest_step(20) // 20  # epochs of 20 steps
    assert saved >= 2 and not (run / "model.safetensors").exists()
    assert [r["epoch"] for r in read_metrics(run)][:saved] == list(range(1, saved + 1))


def test_an_epochs_records_are_written_whole_before_an_interrupt_lands():
    from vaelab.training.safety import interrupts_held as _interrupts_held
    from vaelab.training.safety import sigterm_as_interrupt as _sigterm_as_interrupt

    done = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a job started in the background
    with pytest.raises(KeyboardInterrupt), _sigterm_as_interrupt():
        with _interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler has run by now, and held the signal
            done.append("metrics and snapshot")
        done.append("never reached")
    assert done == ["metrics and snapshot"]
    assert signal.getsignal(signal.SIGINT) is before
