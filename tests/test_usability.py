"""What a newcomer meets: reuse keyed on content, settings precedence, logs, names, the API."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

import vaelab
from conftest import make_prototype_mnist
from vaelab.cli import app as cli
from vaelab.cli.app import run
from vaelab.core.config import RunConfig, TrainConfig, from_dict
from vaelab.core.device import resolve_device
from vaelab.core.errors import VaelabError
from vaelab.data import mnist as data
from vaelab.data.tensors import TensorData
from vaelab.training.run import train


def save_npz(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = make_prototype_mnist(seed=seed)
    np.savez(path, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    return path


def out_err(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out, captured.err


TRAIN = ["train", "--z", "2", "--train-size", "100", "--test-size", "50", "--epochs", "1"]


# --- 1: reuse keyed on the data's content --------------------------------------------------


def test_fingerprint_is_the_content_not_the_file(tmp_path):
    a = data.load_mnist(save_npz(tmp_path / "a.npz"))
    m = make_prototype_mnist()
    floats = tmp_path / "floats.npz"
    np.savez(
        floats,
        x_train=m.x_train / 255.0,
        y_train=m.y_train.astype(np.int32),
        x_test=m.x_test / 255.0,
        y_test=m.y_test,
    )
    assert data.load_mnist(floats).sha256 == a.sha256 == m.sha256
    assert data.load_mnist(save_npz(tmp_path / "b.npz", seed=1)).sha256 != a.sha256
    arrays = {role: getattr(m, role) for role in data.ROLES}
    data._write_cache(tmp_path / "cache", arrays, "test")
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["content_sha256"] == m.sha256
    assert data._read_cache(tmp_path / "cache", None).sha256 == m.sha256


def test_train_resume_is_keyed_on_content_not_path(tmp_path, capsys):
    a, b, run_dir = save_npz(tmp_path / "a.npz"), tmp_path / "b.npz", tmp_path / "run"
    assert run([*TRAIN, "--data", str(a), "--out", str(run_dir)]) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["data"]["sha256"] == data.load_mnist(a).sha256
    assert str(a) in saved["data"]["source"] and saved["train"]["device"] == "cpu"
    shutil.copy(a, b)  # the same bytes under another name: resumed
    assert run(["train", "--data", str(b), "--out", str(run_dir), "--resume", "--epochs", "2"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["train"]["epochs"] == 2
    save_npz(a, seed=1)  # other bytes under the same name: refused, naming the difference
    capsys.readouterr()
    assert run(["train", "--data", str(a), "--out", str(run_dir), "--resume", "--epochs", "3"]) == 1
    assert "data.sha256" in out_err(capsys)[1]


# --- 5, 6: settings precedence -------------------------------------------------------------


def test_flags_given_override_the_config_file(tmp_path, capsys):
    npz = save_npz(tmp_path / "a.npz")
    toml = tmp_path / "run.toml"
    toml.write_text(
        "[model]\nkind = 'vae'\nlatent = 4\n[train]\nlr = 0.002\nepochs = 50\n"
        "[data]\ntrain_size = 100\ntest_size = 50\n"
    )
    args = ["train", "--config", str(toml), "--model", "ae", "--z", "3", "--epochs", "1"]
    assert run([*args, "--data", str(npz), "--out", str(tmp_path / "r")]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["model"]["kind"], cfg["model"]["latent"], cfg["train"]["epochs"]) == ("ae", 3, 1)
    assert cfg["train"]["lr"] == 0.002 and cfg["data"]["train_size"] == 100  # from the TOML
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    args = ["train", "--config", str(empty), "--epochs", "1", "--train-size", "100"]
    assert run([*args, "--data", str(npz), "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "config.json").read_text())["train"]["epochs"] == 1


def test_resume_takes_the_saved_settings_and_names_each_difference(tmp_path, capsys):
    npz, run_dir = str(save_npz(tmp_path / "a.npz")), str(tmp_path / "r")
    args = [*TRAIN, "--epochs", "2", "--model", "cvae", "--labelled", "40"]
    assert run([*args, "--data", npz, "--out", run_dir]) == 0
    assert run(["train", "--data", npz, "--out", run_dir, "--resume"]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["data"]["n_labelled"] == 40
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    bad = ["train", "--data", npz, "--out", run_dir, "--resume", "--lr", "0.5", "--z", "5"]
    assert run(bad) == 1
    err = out_err(capsys)[1]
    assert "train.lr" in err and "model.latent" in err and "2 -> 5" in err


def test_interrupted_commands_say_how_to_continue(monkeypatch, capsys):
    import vaelab.study.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vaelab.study.pipeline, "run_study", interrupted)
    assert run(["study", "--preset", "tiny"]) == 130
    err = out_err(capsys)[1]
    assert "run the same command again" in err and "--resume" not in err


# --- 8, 9, 10, 17: output for logs and people ------------------------------------------------


def test_train_writes_full_lines_per_epoch_to_a_pipe(tmp_path, capsys):
    npz = save_npz(tmp_path / ("a-very-long-folder-name-" * 3) / "a.npz".lstrip("/"))
    run_dir = tmp_path / "r"
    assert run([*TRAIN, "--epochs", "3", "--data", str(npz), "--out", str(run_dir)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for epoch in (1, 2, 3):
        assert any(f"epoch {epoch}/3" in line for line in lines), out
    assert "device: cpu" in out
    assert any(str(npz) in line and len(line) > 80 for line in lines)  # not cut at 80 columns
    assert "a seeded subset of 50 of the 100 test images" in out
    assert "…" not in out


def test_eval_test_size_json_and_cvae_names(tmp_path, capsys):
    npz, run_dir = str(save_npz(tmp_path / "a.npz")), str(tmp_path / "r")
    assert (
        run([*TRAIN, "--model", "cvae", "--labelled", "50", "--data", npz, "--out", run_dir]) == 0
    )
    capsys.readouterr()
    assert run(["eval", run_dir, "--data", npz, "--test-size", "0", "--iwae", "3"]) == 0
    out = capsys.readouterr().out
    assert "all 100 test images" in out and "device: cpu" in out
    assert "KL(q(z|x,y) || p(z))" in out and "log p(x|y)" in out and "no label" in out
    assert run(["eval", run_dir, "--data", npz, "--test-size", "30", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_images"] == 30 and result["kind"] == "cvae"
    assert set(result["measures"]["without_label"]) >= {"nll", "kl", "elbo"}
    assert result["measures"]["nll"] != result["measures"]["without_label"]["nll"]


def test_iwae_on_an_ae_says_it_does_not_apply(tmp_path, capsys):
    npz, run_dir = str(save_npz(tmp_path / "a.npz")), str(tmp_path / "r")
    assert run([*TRAIN, "--model", "ae", "--data", npz, "--out", run_dir]) == 0
    capsys.readouterr()
    assert run(["eval", run_dir, "--data", npz, "--iwae", "5"]) == 0
    assert "does not apply to an AE" in capsys.readouterr().out


def test_data_table_is_whole_at_80_columns_in_a_pipe(prototype_npz, monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=80))
    assert run(["data", "--data", prototype_npz]) == 0
    text = buffer.getvalue()
    assert (
        "…" not in text
        and "400" in text
        and all(
            len(line) <= 80
            for line in text.splitlines()
            if "source" not in line and "sha256" not in line
        )
    )


# --- 11, 18-22: CLI conventions and one-line errors -------------------------------------------


@pytest.mark.parametrize("device", ["gpu", "mps", "cuda:x"])
def test_unknown_devices_are_one_line(device, tmp_path, capsys):
    assert run(["eval", str(tmp_path), "--device", device]) == 1
    assert f"'{device}'" in out_err(capsys)[1]


def test_cuda_n_is_a_device_checked_against_the_gpus_here():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    RunConfig(train=TrainConfig(device="cuda:3")).validate()  # accepted as a setting
    if count <= 3:
        with pytest.raises(VaelabError, match="cuda:3"):
            resolve_device("cuda:3")
    if count:
        assert resolve_device("cuda:0") == torch.device("cuda:0")


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    file = tmp_path / "file.txt"
    file.write_text("mine")
    for args in (["train", "--out", str(file)], ["study", "--preset", "tiny", "--out", str(file)]):
        assert run(args) == 1
        assert "is a file" in out_err(capsys)[1]
    assert file.read_text() == "mine"


def test_version_help_and_no_arguments(capsys):
    assert run(["--version"]) == 0
    assert vaelab.__version__ in capsys.readouterr().out
    assert run(["train", "-h"]) == 0
    help_text = capsys.readouterr().out
    assert "--resume " in help_text and "<bool>" not in help_text
    assert run([]) == 0
    out, err = capsys.readouterr()
    assert "Commands" in out and "error" not in err


def test_every_option_has_help():
    import typer

    command = typer.main.get_command(cli.app)
    for name, sub in command.commands.items():
        for param in sub.params:
            if param.param_type_name == "option":
                assert param.help and "\n" not in param.help, (name, param.name)
                assert param.help != "article's C."


def test_resume_is_a_plain_flag(tmp_path, capsys):
    assert run(["train", "--out", str(tmp_path / "r"), "--resume", "false"]) == 2
    assert "false" in out_err(capsys)[1]


def test_tilde_expands_in_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    npz = save_npz(tmp_path / "a.npz")
    monkeypatch.chdir(tmp_path)
    assert run([*TRAIN, "--data=~/a.npz", "--out=~/runs/x"]) == 0
    assert (tmp_path / "runs" / "x" / "model.json").exists() and not (tmp_path / "~").exists()
    assert npz.exists()


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE"])
def test_no_network_accepts_the_usual_true_words(value, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_NO_NETWORK", value)
    with pytest.raises(VaelabError, match="skipped"):
        data.load_mnist(cache_dir=tmp_path, mirrors=("http://127.0.0.1:9/",), use_hub=False)


# --- 12-16: the Python API -------------------------------------------------------------------


def test_api_inference_device_load_progress_and_errors(tmp_path, capsys):
    mnist = make_prototype_mnist()
    cfg = RunConfig(train=TrainConfig(epochs=2, device="cpu")).validate()
    cfg = from_dict(
        RunConfig,
        {
            "model": {"kind": "cvae", "latent": 3},
            "train": {"epochs": 2, "device": "cpu"},
            "data": {"train_size": 100, "test_size": 20, "n_labelled": 50},
        },
    )
    data_ = TensorData.from_mnist(mnist, cfg)  # the device comes from the settings
    model = train(cfg, data_, tmp_path / "run", progress=True)
    assert "epoch 2/2" in capsys.readouterr().out
    codes = model.embed(data_.x_test)
    assert not codes.requires_grad and codes.numpy().shape == (20, 3)
    assert not model.reconstruct(data_.x_test, data_.y_test).requires_grad
    assert not model.encode(data_.x_test).mu.requires_grad  # eval mode: inference
    model.train()
    assert model.decode(model.encode(data_.x_test).mu).requires_grad  # training: differentiable
    loaded, saved = vaelab.load(tmp_path / "run")
    assert saved.model.latent == 3 and saved.data.sha256 == mnist.sha256
    assert torch.equal(loaded.embed(data_.x_test), codes)
    with pytest.raises(VaelabError) as err:
        train(cfg, data_, tmp_path / "run")
    assert "--" not in str(err.value)
    cuda_cfg = RunConfig(train=TrainConfig(device="cuda"))
    with pytest.raises(VaelabError, match="cuda"):
        train(cuda_cfg, TensorData.from_mnist(mnist, cfg), tmp_path / "cuda")
    assert not (tmp_path / "cuda" / "config.json").exists()


# --- 20: the settings reference --------------------------------------------------------------


def test_settings_reference_matches_the_config_dataclasses():
    import dataclasses

    from vaelab.core.config import DataConfig, ExperimentConfig, ModelConfig, StudyConfig
    from vaelab.core.settings_doc import settings_markdown

    text = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    assert text == settings_markdown(), "run python -m vaelab.core.settings_doc docs/settings.md"
    for cls in (StudyConfig, ModelConfig, TrainConfig, DataConfig, ExperimentConfig):
        for f in dataclasses.fields(cls):
            if not dataclasses.is_dataclass(f.type) and f.name not in (
                "model",
                "train",
                "data",
                "experiments",
            ):
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
                assert f"`{f.name}`" in text
    assert "`walks`" in text and "`beta1`" in text and "`hidden`" in text
