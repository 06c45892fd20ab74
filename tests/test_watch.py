"""Watching runs: `vaelab status`, TensorBoard scalars and the embedding projector's files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_prototype_mnist
from vaelab.cli.app import run as cli_run
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, to_dict
from vaelab.core.folders import LOCK_FILE, read_metrics
from vaelab.data.tensors import TensorData
from vaelab.execution.status import study_status
from vaelab.report.tboard import write_scalars
from vaelab.training.reporter import SilentReporter
from vaelab.training.run import Trainer


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, Path]:
    """(a study folder with a finished VAE z=2 and AE z=3 and a stopped CVAE, its data file)."""
    root = tmp_path_factory.mktemp("watch")
    m = make_prototype_mnist(100, 30)
    data = root / "data.npz"
    np.savez(data, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    for kind, z, epochs in (("vae", 2, 3), ("ae", 3, 3), ("cvae", 2, 5)):
        cfg = RunConfig(
            model=ModelConfig(kind=kind, latent=z, hidden=16),
            train=TrainConfig(epochs=epochs, batch_size=25, eval_every=2, device="cpu"),
            data=DataConfig(path=str(data), test_size=30, n_labelled=50),
        ).validate()
        run_dir = root / "study" / "models" / f"{kind}-z{z}"
        with contextlib.suppress(KeyboardInterrupt):  # the CVAE stops after 2 of its 5 epochs
            reporter = StopAfter(2) if kind == "cvae" else None
            Trainer(cfg, TensorData.from_mnist(m, cfg), run_dir, reporter).fit()
    return root / "study", data


class StopAfter(SilentReporter):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def epoch(self, metrics: dict) -> None:
        if metrics["epoch"] == self.epochs:
            raise KeyboardInterrupt


def test_status_shows_epochs_losses_and_state_in_80_columns(study):
    folder, _ = study
    text = study_status(folder)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = {line.split("  ")[0].strip(): line for line in lines[1:-1]}
    assert set(rows) == {"ae z=3 s0", "cvae z=2 s0", "vae z=2 s0"}
    log = read_metrics(folder / "models" / "vae-z2")
    last, per = log[-1], log[0]["step"]  # steps done of all, and the epochs they make
    vae = rows["vae z=2 s0"].split()
    assert vae[3:7] == [
        f"{3 * per}/{3 * per}",
        "3",
        f"{last['loss']:.4g}",
        f"{last['test_loss']:.4g}",
    ]
    assert rows["vae z=2 s0"].endswith("finished")
    cvae = rows["cvae z=2 s0"].split()
    test_loss = read_metrics(folder / "models/cvae-z2")[1]["test_loss"]
    assert cvae[3:5] == [f"{2 * per}/{5 * per}", "2"] and cvae[6] == f"{test_loss:.4g}"
    assert rows["cvae z=2 s0"].endswith("stopped")
    assert lines[-1] == "2 of 3 models finished"


def test_status_names_a_lock_holder_without_taking_the_lock(study):
    folder, _ = study
    run_dir = folder / "models" / "cvae-z2"
    lock = run_dir / LOCK_FILE
    lock.write_text("999999999\n")  # a dead holder's leftover: nobody holds it
    assert study_status(run_dir).splitlines()[1].endswith("stopped")
    with open(lock, "w") as f:
        f.write(f"{os.getpid()}\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert study_status(run_dir).splitlines()[1].endswith(f"training (pid {os.getpid()})")
        fcntl.flock(f, fcntl.LOCK_UN)
    lock.unlink()


def test_status_of_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert cli_run(["status", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_tensorboard_scalars_read_back_with_tensorboards_reader(study, tmp_path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is not installed (pip install 'vaelab[tensorboard]')",
    )
    folder, _ = study
    run_dirs = sorted((folder / "models").iterdir())
    written = write_scalars(tmp_path / "tb", run_dirs)
    assert sorted(p.name for p in written) == [
        "ae-z3-seed0",
        "cvae-z2-seed0-C0.1-k5",
        "vae-z2-seed0-C0.1-k5",
    ]  # the VAE and CVAE named with their (C, k)
    write_scalars(tmp_path / "tb", run_dirs)  # rebuilt, not appended
    events = accumulator.EventAccumulator(str(tmp_path / "tb" / "vae-z2-seed0-C0.1-k5"))
    events.Reload()
    rows = read_metrics(folder / "models" / "vae-z2")
    train = events.Scalars("loss/train")
    per = rows[0]["step"]  # at the step each epoch ended
    assert [e.step for e in train] == [per, 2 * per, 3 * per]
    assert [e.value for e in train] == pytest.approx([r["loss"] for r in rows], rel=1e-6)
    test = events.Scalars("loss/test")
    assert [e.step for e in test] == [2 * per, 3 * per]  # every 2 epochs and at the end
    assert {"kl/train", "reconstruction/test", "seconds_per_epoch"} <= set(events.Tags()["scalars"])


def test_projector_files_follow_tensorboards_format(study, tmp_path):
    projector = pytest.importorskip(
        "tensorboard.plugins.projector.projector_config_pb2",
        reason="tensorboard is not installed (pip install 'vaelab[tensorboard]')",
    )
    from google.protobuf import text_format

    folder, data = study
    out = tmp_path / "projector"
    assert cli_run(["export-projector", str(folder), "--out", str(out)]) == 0
    config = text_format.Parse(
        (out / "projector_config.pbtxt").read_text(), projector.ProjectorConfig()
    )
    assert [e.tensor_name for e in config.embeddings] == ["ae-z3-seed0", "vae-z2-seed0-C0.1-k5"]
    labels = (out / "metadata.tsv").read_text().split()
    assert len(labels) == 30 and set(labels) <= set("0123456789")
    for e, z in zip(config.embeddings, (3, 2), strict=True):
        rows = [line.split("\t") for line in (out / e.tensor_path).read_text().splitlines()]
        assert len(rows) == 30 and {len(r) for r in rows} == {z}
        assert all(math.isfinite(float(v)) for r in rows for v in r)
        assert e.metadata_path == "metadata.tsv" and list(e.sprite.single_image_dim) == [28, 28]
    sprite = Image.open(out / config.embeddings[0].sprite.image_path)
    assert sprite.size == (6 * 28, 6 * 28) and sprite.mode == "L"  # ceil(sqrt(30)) = 6 per row
    with np.load(data) as arrays:
        first = np.asarray(sprite)[:28, :28]
        assert any(np.array_equal(first.reshape(-1), x) for x in arrays["x_test"])


def test_study_progress_writes_full_lines_per_epoch_to_a_log(tmp_path):
    import io
    import json

    from rich.console import Console

    from vaelab.execution.progress import StudyProgress

    runs = []
    for kind, seed in (("vae", 0), ("cvae", 1)):
        model, train = ModelConfig(kind=kind, latent=16), TrainConfig(epochs=3, seed=seed)
        run_dir = tmp_path / f"{kind}-{seed}"
        run_dir.mkdir()
        runs.append((RunConfig(model=model, train=train), run_dir))
    log = io.StringIO()
    console = Console(file=log, width=80)  # a file: not a terminal
    with StudyProgress(runs, console, jobs=1) as progress:
        for epoch in (1, 2):
            row = {"epoch": epoch, "loss": 123.456 - epoch, "seconds": 2.0}
            with open(runs[0][1] / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            progress.update()
        progress.update()  # nothing new: nothing printed
    lines = log.getvalue().splitlines()
    assert lines == [
        "[1/2] VAE z=16 seed 0: step 600/1800 (epoch 1/3) loss 122.5; study ETA 0m10s",
        "[1/2] VAE z=16 seed 0: step 1200/1800 (epoch 2/3) loss 121.5; study ETA 0m08s",
    ]
    assert "\x1b" not in log.getvalue()  # no bars, no escape codes


def test_status_sorts_by_model_then_z_and_seed_as_numbers(tmp_path):
    models = tmp_path / "study" / "models"
    names = ["vae-z16-s0", "ae-z64-s0", "ae-z16-s1", "ae-z2-s10", "ae-z16-s0", "ae-z2-s2"]
    for name in names:
        kind, z, seed = name.split("-")
        cfg = RunConfig(
            model=ModelConfig(kind=kind, latent=int(z[1:])), train=TrainConfig(seed=int(seed[1:]))
        )
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text(json.dumps(to_dict(cfg)))
    rows = [line.split("  ")[0].strip() for line in study_status(tmp_path / "study").splitlines()]
    assert rows[1:-1] == [
        "ae z=2 s2",
        "ae z=2 s10",
        "ae z=16 s0",
        "ae z=16 s1",
        "ae z=64 s0",
        "vae z=16 s0",
    ]
