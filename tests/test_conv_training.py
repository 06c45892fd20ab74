"""The convolutional family trains through the one group trainer: run folders, checkpoints,
milestones, metrics, and a resume after a kill that ends bit for bit where an unbroken run
does; a study lists it beside the MLP models."""

import dataclasses
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
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.folders import read_metrics
from vaelab.data.tensors import compact_data, training_split
from vaelab.models import kinds
from vaelab.models.conv import ConvCVAE, ConvVAE
from vaelab.training import checkpoint
from vaelab.training.identity import run_name
from vaelab.training.trainer import TrainingRun, train_group

SRC = str(Path(__file__).resolve().parents[1] / "src")


def config(kind="conv-vae", z=2, seed=0, **train_args):
    return RunConfig(
        model=ModelConfig(kind=kind, latent=z),
        train=TrainConfig(
            **{"epochs": 2, "batch_size": 50, "checkpoint_every": 1, "eval_every": 1}
            | {"seed": seed, **train_args}
        ),
        data=DataConfig(test_size=None, n_labelled=100),
    )


def test_the_records_agree_with_their_modules():
    for record in kinds.RECORDS:
        with torch.device("meta"):
            model = record.build(ModelConfig(kind=record.name, latent=3))
        assert model.is_variational == record.variational
        assert model.uses_labels == record.labels
        assert model.has_classifier == record.classifier
        if record.family == "mlp":  # its layers are described by what it holds
            assert model.traits == record.traits
    assert isinstance(kinds.build_model(ModelConfig(kind="conv-cvae")), ConvCVAE)
    assert [r.name for r in kinds.RECORDS if r.family == "conv"] == [
        "conv-ae",
        "conv-vae",
        "conv-cvae",
    ]


def test_labels_are_withheld_by_the_settings_alone_and_read_by_the_kinds_that_read_them():
    """The data layer names no kind: every run's split withholds the same labels, and only
    the kinds whose record reads labels see them in training."""
    y = np.arange(600) % 10
    splits = {
        kind: training_split(y, RunConfig(ModelConfig(kind=kind), data=DataConfig(n_labelled=50)))
        for kind in kinds.names()
    }
    first = splits["ae"].y_train
    assert (first >= 0).sum() == 50
    assert all(np.array_equal(s.y_train, first) for s in splits.values())


def test_the_registry_imports_no_torch():
    code = "import sys, vaelab.models.kinds as k; k.names(); print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": SRC}
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr


def test_the_architecture_settings_of_the_mlp_leave_a_conv_runs_name_alone():
    cfg = config()
    other = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, hidden=(64, 32), activation="relu")
    )
    assert run_name(cfg) == run_name(other)
    latent = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, latent=3))
    assert run_name(latent) != run_name(cfg)


@pytest.mark.parametrize("kind", ["conv-ae", "conv-vae", "conv-cvae"])
def test_a_conv_group_trains_and_resumes_in_process_bit_for_bit(kind, prototype_mnist, tmp_path):
    cfgs = [config(kind, z=2, seed=0, epochs=3), config(kind, z=4, seed=1, epochs=3)]
    data = [compact_data(prototype_mnist, c) for c in cfgs]

    def group(configs, name):
        return [TrainingRun(c, data[i], tmp_path / f"{name}{i}") for i, c in enumerate(configs)]

    models = train_group(group(cfgs, "straight"))
    assert type(models[0]).__name__ == type(kinds.build_model(cfgs[0].model)).__name__
    short = [dataclasses.replace(c, train=dataclasses.replace(c.train, epochs=1)) for c in cfgs]
    train_group(group(short, "split"))
    train_group(group(cfgs, "split"), resume=True)
    for i in range(2):
        straight, split = tmp_path / f"straight{i}", tmp_path / f"split{i}"
        assert (split / "model.safetensors").read_bytes() == (
            straight / "model.safetensors"
        ).read_bytes()
        rows = read_metrics(split)
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        assert all(np.isfinite(r["loss"]) and np.isfinite(r["test_loss"]) for r in rows)
        per = -(-len(data[i].x_train) // 50)
        found = checkpoint.load_milestones(split, steps_per_epoch=per)
        assert set(found) == {per, 3 * per}  # the last steps of the short run and of the long
        final = found[3 * per].state_dict()
        assert all(torch.equal(final[k], v) for k, v in models[i].state_dict().items())
    loaded, _ = checkpoint.load_model(tmp_path / "straight1", "cpu")
    assert loaded.cfg.latent == 4 and loaded.is_variational == (kind != "conv-ae")


def test_a_conv_cvae_sees_only_its_labelled_images(prototype_mnist):
    data = compact_data(prototype_mnist, config("conv-cvae"))
    assert int((data.y_train >= 0).sum()) == 100
    vae = compact_data(prototype_mnist, config("conv-vae"))  # the same split: the settings'
    assert torch.equal(vae.y_train, data.y_train)


GROUP_SCRIPT = """
import sys, numpy as np
from pathlib import Path
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data import MNIST
from vaelab.data.tensors import compact_data, training_split
from vaelab.training.trainer import TrainingRun, train_group
a = np.load(sys.argv[1])
mnist = MNIST(a["x_train"], a["y_train"], a["x_test"], a["y_test"], "npz")
out, resume, kind = Path(sys.argv[2]), sys.argv[3] == "resume", sys.argv[4]
cfgs = [RunConfig(ModelConfig(kind=kind, latent=z),
                  TrainConfig(epochs=4, batch_size=50, checkpoint_every=1, eval_every=100,
                              seed=z, device="cpu"),
                  DataConfig(test_size=100, n_labelled=200)) for z in (2, 4)]
train_group([TrainingRun(c, compact_data(mnist, c), out / f"m{i}") for i, c in enumerate(cfgs)],
            resume=resume)
"""


@pytest.mark.parametrize("kind", ["conv-cvae"])
def test_kill_9_then_resume_a_conv_group_gives_the_same_weights_bit_for_bit(kind, tmp_path):
    m = make_prototype_mnist(n_train=500, n_test=100)
    npz = str(tmp_path / "mnist.npz")
    np.savez(npz, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-c", GROUP_SCRIPT, npz]
    subprocess.run([*run, str(tmp_path / "straight"), "new", kind], env=env, check=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*run, str(killed), "new", kind], env=env)
    deadline = time.monotonic() + 300
    while not (killed / "m1" / "checkpoints" / "step-000000020.json").exists():  # epoch 2
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before epoch 2"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "m0" / "model.safetensors").exists()
    subprocess.run([*run, str(killed), "resume", kind], env=env, check=True)
    for name in ("m0", "m1"):
        assert (killed / name / "model.safetensors").read_bytes() == (
            tmp_path / "straight" / name / "model.safetensors"
        ).read_bytes()
        assert [r["epoch"] for r in read_metrics(killed / name)] == list(range(1, 5))
    assert isinstance(checkpoint.load_model(killed / "m0", "cpu")[0], ConvVAE)


CONV_STUDY = """name = "conv"
models = ["ae", "vae", "cvae", "conv-ae", "conv-vae", "conv-cvae"]
latents = [2, 4]
[train]
epochs = 1
[data]
train_size = 500
test_size = 200
n_labelled = 250
[experiments]
kmeans_runs = 2
iwae_samples = 10
iwae_images = 20
elbo_samples = 2
walk_steps = 4
classifier_epochs = 1
"""


def test_a_study_lists_the_conv_family_beside_the_mlp_models(tmp_path):
    from vaelab.study.pipeline import run_study

    preset = tmp_path / "conv.toml"
    preset.write_text(CONV_STUDY)
    out = tmp_path / "study"
    run_study(str(preset), out, device="cpu")
    results = json.loads((out / "results.json").read_text())
    assert {r["kind"] for r in results["training"].values()} == set(CONV_STUDY_KINDS)
    experiments = results["experiments"]
    table = experiments["reconstruction"]["table"]
    for mode in (
        "conv-ae",
        "conv-vae",
        *(f"conv-cvae ({w} label)" for w in ("no", "true", "wrong")),
    ):
        assert set(table[mode]) == {"2", "4"}
        assert all(np.isfinite(m["nll"]) for m in table[mode].values())
    for name in ("latent", "clustering"):
        assert all(k in json.dumps(experiments[name]) for k in CONV_STUDY_KINDS)
    report = (out / "report.html").read_text()
    assert "conv 32 (4×4, stride 2) → conv 64 → z" in report
    assert "the label added before the first activation of both networks" in report
    explorer = (out / "explorer.html").read_text()
    assert '"left_out":["conv-ae","conv-vae","conv-cvae"]' in explorer
    assert '"id":"conv-' not in explorer and '"id":"vae-z2"' in explorer
    # every claim judged again on the conv family, each model read as the article's it plays
    families = results["families"]
    assert families["headline"] == "mlp" and list(families["sets"]) == ["mlp", "conv"]
    conv = families["sets"]["conv"]
    assert comparisons(conv["claims"]) == comparisons(results["claims"])
    assert sum(map(len, comparisons(conv["claims"]).values())) >= 15
    assert "changes" in conv and "Judged again on the conv family" in report
    assert '<a href="#regime">judged again</a>' in report  # no converged study: no regime
    as_roles, as_kinds = conv["experiments"]["reconstruction"]["table"], table
    for role in ("ae", "vae", "cvae (true label)", "cvae (wrong label)"):
        for z in ("2", "4"):  # the same model measured twice: as itself and in its role
            assert as_roles[role][z]["nll"] == as_kinds[f"conv-{role}"][z]["nll"], (role, z)
    # a study of the conv family alone: its verdicts are the family's, its models reused
    alone = tmp_path / "alone.toml"
    alone.write_text(CONV_STUDY.replace(json.dumps(list(CONV_STUDY_KINDS)), json.dumps(CONV_KINDS)))
    assert alone.read_text() != CONV_STUDY
    run_study(str(alone), out, device="cpu")
    only = json.loads((out / "results.json").read_text())
    assert all(r["reused"] for r in only["training"].values())
    assert only["families"] == {
        "headline": "conv",
        "sets": {"conv": only["families"]["sets"]["conv"]},
    }
    assert [c["verdict"] for c in only["claims"]] == [c["verdict"] for c in conv["claims"]]
    assert comparisons(only["claims"]) == comparisons(conv["claims"])


def comparisons(claims):
    return {c["number"]: [x["name"] for x in c["comparisons"]] for c in claims}


CONV_STUDY_KINDS = ("ae", "vae", "cvae", "conv-ae", "conv-vae", "conv-cvae")
CONV_KINDS = list(CONV_STUDY_KINDS[3:])
