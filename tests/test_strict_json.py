"""Every JSON file vaelab writes is strict JSON: no NaN or Infinity tokens."""

from __future__ import annotations

import io
import json
import math

import pytest
from rich.console import Console

from helpers_reliability import MICRO_STUDY, write_npz
from vaelab.cli.app import run
from vaelab.core import fileio
from vaelab.core.errors import VaelabError
from vaelab.study.pipeline import run_study


def strict(text: str):
    def refuse(token: str):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_every_json_file_of_a_study_and_a_run_is_strict(tmp_path):
    data = write_npz(tmp_path / "m.npz", 300, 100)
    toml = tmp_path / "micro.toml"
    toml.write_text(MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n'))
    run_study(str(toml), tmp_path / "study", console=Console(file=io.StringIO()))
    args = ["--data", str(data), "--z", "2", "--epochs", "2", "--train-size", "100"]
    assert run(["train", "--out", str(tmp_path / "run"), "--checkpoint-every", "1", *args]) == 0
    files = sorted(tmp_path.rglob("*.json")) + sorted(tmp_path.rglob("*.jsonl"))
    kinds = {p.name if p.suffix == ".jsonl" or p.parent.name != "checkpoints" else "ckpt"
             for p in files}  # fmt: skip
    for name in ("results.json", "experiments.json", "model.json", "config.json",
                 "metrics.jsonl", "classifier.json", "ckpt"):  # fmt: skip
        assert name in kinds
    for path in files:
        text = path.read_text()
        lines = text.splitlines() if path.suffix == ".jsonl" else [text]
        for line in lines:
            strict(line)


def test_write_json_refuses_non_finite_numbers_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    fileio.write_json(path, {"ok": 1})
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(VaelabError, match=r"a\.json: final\.loss\[1\] is not a finite"):
            fileio.write_json(path, {"final": {"loss": [1.0, bad]}})
    assert strict(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left


def test_log_lines_write_non_finite_numbers_as_null():
    line = fileio.json_line({"epoch": 3, "loss": math.nan, "parts": [math.inf, 2.0]})
    assert strict(line) == {"epoch": 3, "loss": None, "parts": [None, 2.0]}
