"""The command line: the commands work, and bad input is one line and a non-zero exit."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vaelab.cli.app import run
from vaelab.core.config import ModelConfig, RunConfig, TrainConfig, to_dict

SRC = str(Path(__file__).resolve().parents[1] / "src")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_data_train_eval_round_trip(prototype_npz, tmp_path, capsys):
    assert run(["data", "--data", prototype_npz]) == 0
    out = capsys.readouterr().out
    assert "user path" in out and "400" in out and "40" in out  # 40 images of each digit
    args = [
        "train",
        "--data",
        prototype_npz,
        "--model",
        "cvae",
        "--z",
        "3",
        "--epochs",
        "2",
        "--labelled",
        "100",
        "--test-size",
        "50",
        "--out",
        str(tmp_path / "run"),
    ]
    assert run(args) == 0
    assert "reconstruction NLL" in capsys.readouterr().out
    assert run(["eval", str(tmp_path / "run"), "--data", prototype_npz, "--iwae", "20"]) == 0
    out = capsys.readouterr().out
    assert "ELBO" in out and "IWAE" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "gan", "--out", "x"], "gan"),
        (["train", "--z", "0", "--out", "x"], "--z"),
        (["train", "--epochs", "0", "--out", "x"], "--epochs"),
        (["train", "--lr", "fast", "--out", "x"], "--lr"),
        (["train", "--lr", "-1", "--out", "x"], "lr must be > 0"),
        (["train"], "--out"),
        (["study", "--preset", "huge"], "unknown preset"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_command_lines(args, message, capsys):
    assert run(args) != 0
    assert message in one_line_error(capsys)


def test_missing_or_corrupt_run_folders(prototype_npz, tmp_path, capsys):
    assert run(["eval", str(tmp_path / "nowhere")]) == 1
    assert "not a vaelab run folder" in one_line_error(capsys)
    run_dir = tmp_path / "run"
    assert (
        run(["train", "--data", prototype_npz, "--z", "2", "--epochs", "1", "--out", str(run_dir)])
        == 0
    )
    capsys.readouterr()
    model = run_dir / "model.safetensors"
    model.write_bytes(model.read_bytes()[:100])
    assert run(["eval", str(run_dir), "--data", prototype_npz]) == 1
    assert "corrupt" in one_line_error(capsys)
    (run_dir / "config.json").write_text("{not json")
    assert run(["eval", str(run_dir), "--data", prototype_npz]) == 1
    assert "not valid JSON" in one_line_error(capsys)


def test_bad_data_path_and_bad_config_file(tmp_path, capsys):
    assert run(["data", "--data", str(tmp_path / "missing.npz")]) == 1
    one_line_error(capsys)
    bad = tmp_path / "run.toml"
    bad.write_text("[model]\nkind = 'vae'\nlatent = 'sixteen'\n")
    assert run(["train", "--config", str(bad), "--out", str(tmp_path / "r")]) == 1
    assert "model.latent" in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_the_installed_entry_point_prints_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vaelab", "eval", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": ""},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_study_help_lists_every_shipped_preset(capsys):
    shipped = sorted(p.stem for p in (Path(SRC) / "vaelab/core/presets").glob("*.toml"))
    assert len(shipped) >= 4
    assert run(["study", "--help"]) == 0
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # unwrapped
    listed = re.search(r"A shipped preset \(([^)]*)\)", text).group(1).split(", ")
    assert listed == shipped
    assert run(["study", "--preset", "huge"]) == 1
    assert ", ".join(shipped) in one_line_error(capsys)


def fake_runs(models: Path, names: list[str], finished: bool = True) -> None:
    """Run folders named <kind>-z<z>-s<seed>-<hash> with their config (and a model record)."""
    for name in names:
        kind, z, seed, _ = name.split("-")
        cfg = RunConfig(
            model=ModelConfig(kind=kind, latent=int(z[1:])), train=TrainConfig(seed=int(seed[1:]))
        )
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text(json.dumps(to_dict(cfg)))
        if finished:
            (models / name / "model.json").write_text("{}")


def test_eval_of_a_study_folder_points_to_its_runs(tmp_path, capsys):
    study = tmp_path / "study"
    (study / "models").mkdir(parents=True)
    assert run(["eval", str(study)]) == 1
    assert "holds no finished run yet" in one_line_error(capsys)
    fake_runs(study / "models", ["vae-z16-s0-aa", "cvae-z4-s0-bb", "ae-z16-s0-cc", "ae-z2-s1-dd"])
    fake_runs(study / "models", ["ae-z2-s0-ee"], finished=False)
    assert run(["eval", str(study)]) == 1
    error = one_line_error(capsys)
    models = study / "models"
    assert f"{study} is a study folder; evaluate one of its runs: {models}/<run>" in error
    # one example per model kind, the first of each by z and seed as numbers, finished only
    examples = [f"{models / name}" for name in ("ae-z2-s1-dd", "vae-z16-s0-aa", "cvae-z4-s0-bb")]
    assert f"e.g. {', '.join(examples)} (4 finished runs in {models})" in error
    assert run(["eval", str(models / "ae-z2-s1-dd")]) == 1  # a run folder: no such hint
    assert "study folder" not in one_line_error(capsys)
