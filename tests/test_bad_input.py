"""Bad input: every case ends in one `error:` line, a non-zero exit, no traceback,
and every file on disk exactly as it was.

Each case gets its own copy of a small world (data files, a finished run folder, a study
TOML), may damage something in it, then runs the CLI in-process; a few run as real
subprocesses, as a user would.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from helpers_reliability import MICRO_STUDY, tree_hash, vaelab, write_npz
from vaelab.cli.app import run

RUN_ARGS = [
    "--model", "vae", "--z", "2", "--train-size", "200", "--test-size", "50",
    "--checkpoint-every", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("world")
    write_npz(w / "m.npz", 200, 50)
    (w / "file.txt").write_text("precious")
    assert run(["train", "--out", str(w / "run"), "--data", str(w / "m.npz"), "--epochs", "2",
                *RUN_ARGS]) == 0  # fmt: skip
    (w / "study.toml").write_text(_study_toml(w))
    idx = w / "idx"
    idx.mkdir()
    for name, raw in _idx_files().items():
        (idx / name).write_bytes(raw)
    return w


def _study_toml(w: Path, **changes: str) -> str:
    text = MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{w / "m.npz"}"\n')
    for line, new in changes.items():
        text = text.replace(line, new)
    return text


def _idx_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 20), ("t10k", 10)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        files[f"{prefix}-images-idx3-ubyte"] = struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes()
        files[f"{prefix}-labels-idx1-ubyte"] = struct.pack(">II", 2049, n) + y.tobytes()
    return files


# --- ways to damage the world ----------------------------------------------------------------


def npz(**arrays: np.ndarray) -> Callable[[Path], list[str]]:
    def setup(w: Path) -> list[str]:
        m = dict(np.load(w / "m.npz"))
        m.update(arrays)
        for key in [k for k, v in m.items() if v is None]:
            del m[key]
        np.savez(w / "bad.npz", **{k: v for k, v in m.items() if v is not None})
        return ["data", "--data", str(w / "bad.npz")]

    return setup


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        path = w / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return setup


def edit(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        (w / name).write_bytes(change((w / name).read_bytes()))

    return setup


def study_with(**changes: str) -> Callable[[Path], list[str]]:
    def setup(w: Path) -> list[str]:
        (w / "bad.toml").write_text(_study_toml(w, **changes))
        return ["study", "--preset", str(w / "bad.toml"), "--out", str(w / "new-study")]

    return setup


def flip(raw: bytes) -> bytes:
    return raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1 :]


def newest_checkpoint(w: Path) -> str:
    return str(sorted((w / "run" / "checkpoints").glob("*.safetensors"))[-1].relative_to(w))


TRAIN = ["train", "--out", "{w}/new-run", "--data", "{w}/m.npz", "--epochs", "1"]
RESUME = ["train", "--out", "{w}/run", "--data", "{w}/m.npz", "--epochs", "3", "--resume",
          *RUN_ARGS]  # fmt: skip
CONFIG = ["train", "--out", "{w}/new-run", "--config", "{w}/run.toml"]
EVAL = ["eval", "{w}/run", "--device", "cpu"]
DATA = ["data", "--data"]
SWEEP = 'models = ["ae", "vae"]\nkl_weights = '
SAMPLES = 'models = ["ae", "vae"]\nsamples = '
BINARIZE = 'test_size = 100\nbinarize = "yes"'
CW, TS, VAL = (
    "epochs = 2\nclassification_weight = ",
    "test_size = 100",
    "test_size = 100\nvalidation = ",
)
M2, SSL = 'models = ["ae", "vae"]', 'models = ["m2"]\nlabel_counts = '
FILE, NPZ, KM, CHECKPOINTS = "{w}/file.txt", "{w}/m.npz", "kmeans_runs = 2", "run/checkpoints"

# (name, setup or None, argv with {w} for the world's folder; a setup may return the argv)
CASES: list[tuple[str, Callable | None, list[str] | None]] = [
    # the command line
    ("train --out an existing file", None, ["train", "--out", FILE, "--data", "{w}/m.npz"]),
    ("study --out an existing file", None, ["study", "--preset", "{w}/study.toml", "--out", FILE]),
    ("eval --device gpu", None, ["eval", "{w}/run", "--device", "gpu"]),
    ("eval --device mps", None, ["eval", "{w}/run", "--device", "mps"]),
    ("eval --device cuda:0 without a GPU", None, ["eval", "{w}/run", "--device", "cuda:0"]),
    ("train --device tpu", None, [*TRAIN, "--device", "tpu"]),
    ("unknown model", None, [*TRAIN, "--model", "gan"]),
    ("--z 0", None, [*TRAIN, "--z", "0"]),
    ("--z -3", None, [*TRAIN, "--z", "-3"]),
    ("--z not a number", None, [*TRAIN, "--z", "four"]),
    ("--epochs 0", None, [*TRAIN, "--epochs", "0"]),
    ("--batch-size -1", None, [*TRAIN, "--batch-size", "-1"]),
    ("--train-size -5", None, [*TRAIN, "--train-size", "-5"]),
    ("--test-size 0", None, [*TRAIN, "--test-size", "0"]),
    ("--lr 0", None, [*TRAIN, "--lr", "0"]),
    ("--lr nan", None, [*TRAIN, "--lr", "nan"]),
    ("--lr inf", None, [*TRAIN, "--lr", "inf"]),
    ("--kl-weight -1", None, [*TRAIN, "--kl-weight", "-1"]),
    ("--samples 0", None, [*TRAIN, "--samples", "0"]),
    ("--labelled -1", None, [*TRAIN, "--labelled", "-1"]),
    ("--checkpoint-every 0", None, [*TRAIN, "--checkpoint-every", "0"]),
    ("unknown option", None, [*TRAIN, "--epochz", "3"]),
    ("unknown command", None, ["trian"]),
    ("eval --iwae -1", None, ["eval", "{w}/run", "--iwae", "-1"]),
    # run TOML files
    ("--config missing", None, [*CONFIG]),
    ("--config not TOML", write("run.toml", "[train\nepochs = 1"), CONFIG),
    ("--config a wrong type", write("run.toml", '[train]\nepochs = "ten"\n'), CONFIG),
    ("--config an unknown setting", write("run.toml", "[train]\nepoch = 1\n"), CONFIG),
    ("--config an unknown section", write("run.toml", "[optimizer]\nlr = 1\n"), CONFIG),
    ("--config a negative size", write("run.toml", "[model]\nlatent = -2\n"), CONFIG),
    ("--config a bool for an int", write("run.toml", "[train]\nepochs = true\n"), CONFIG),
    ("--config not UTF-8", write("run.toml", b"\xff\xfe[train]"), CONFIG),
    # study configs
    ("unknown preset", None, ["study", "--preset", "huge", "--out", "{w}/new-study"]),
    ("missing study TOML", None, ["study", "--preset", "{w}/nope.toml", "--out", "{w}/s"]),
    ("study: no latents", study_with(**{"latents = [2, 4]": "latents = []"}), None),
    ("study: latent 0", study_with(**{"latents = [2, 4]": "latents = [0, 2]"}), None),
    ("study: repeated latent", study_with(**{"latents = [2, 4]": "latents = [2, 2]"}), None),
    ("study: no models", study_with(**{'models = ["ae", "vae"]': "models = []"}), None),
    ("study: unknown model", study_with(**{'models = ["ae", "vae"]': 'models = ["gan"]'}), None),
    ("study: latents a string", study_with(**{"latents = [2, 4]": 'latents = "2,4"'}), None),
    ("study: unknown setting", study_with(**{"kmeans_runs = 2": "kmeans_run = 2"}), None),
    ("study: digit 11", study_with(**{"kmeans_runs = 2": "recon_digits = [11, 2]"}), None),
    ("study: wrong label = digit", study_with(**{KM: "wrong_labels = [4, 7]"}), None),
    ("study: labels count", study_with(**{"kmeans_runs = 2": "wrong_labels = [9]"}), None),
    ("study: walk_steps 1", study_with(**{"walk_steps = 4": "walk_steps = 1"}), None),
    ("study: plot_latent 1", study_with(**{"kmeans_runs = 2": "plot_latent = 1"}), None),
    ("study: more clusters than images", study_with(**{KM: "kmeans_clusters = 500"}), None),
    ("study: test images lack a digit", study_with(**{"test_size = 100": "test_size = 3"}), None),
    ("study: lr infinite", study_with(**{"epochs = 2": "epochs = 2\nlr = inf"}), None),
    ("study: kl_weights empty", study_with(**{M2: SWEEP + "[]"}), None),
    ("study: kl_weights repeated", study_with(**{M2: SWEEP + "[0.1, 0.1]"}), None),
    ("study: kl_weights negative", study_with(**{M2: SWEEP + "[-1.0]"}), None),
    ("study: kl_weights infinite", study_with(**{M2: SWEEP + "[inf]"}), None),
    ("study: kl_weights nan", study_with(**{M2: SWEEP + "[nan]"}), None),
    ("study: kl_weights a string", study_with(**{M2: SWEEP + '"0.1"'}), None),
    ("study: samples 0", study_with(**{M2: SAMPLES + "[0, 5]"}), None),
    ("study: samples empty", study_with(**{M2: SAMPLES + "[]"}), None),
    ("study: samples repeated", study_with(**{M2: SAMPLES + "[5, 5]"}), None),
    ("study: samples a float", study_with(**{M2: SAMPLES + "[1.5]"}), None),
    ("study: binarize unknown", study_with(**{"test_size = 100": BINARIZE}), None),
    ("study: label_counts below 10", study_with(**{M2: SSL + "[5]"}), None),
    ("study: label_counts above the data", study_with(**{M2: SSL + "[400]"}), None),
    ("study: label_counts repeated", study_with(**{M2: SSL + "[20, 20]"}), None),
    ("study: label_counts without m2", study_with(**{M2: M2 + "\nlabel_counts = [20]"}), None),
    ("study: classification weight negative", study_with(**{"epochs = 2": CW + "-0.1"}), None),
    ("study: classification weight infinite", study_with(**{"epochs = 2": CW + "inf"}), None),
    ("study: classification weight nan", study_with(**{"epochs = 2": CW + "nan"}), None),
    ("study: validation negative", study_with(**{TS: VAL + "-1"}), None),
    ("study: validation all the training images", study_with(**{TS: VAL + "300"}), None),
    ("study: validation leaves fewer images than labels", study_with(**{TS: VAL + "250",
     M2: SSL + "[100]"}), None),  # fmt: skip
    ("study: validation leaves the CVAE fewer labelled images", study_with(**{TS: VAL + "250",
     M2: 'models = ["cvae"]'}), None),  # fmt: skip
    ("study: a hidden layer of 0 units", study_with(**{"hidden = 16": "hidden = [16, 0]"}), None),
    ("study: no hidden layer", study_with(**{"hidden = 16": "hidden = []"}), None),
    ("study: activation unknown", study_with(**{"hidden = 16": 'hidden = 16\nactivation = "gelu"'}),
     None),  # fmt: skip
    ("study: label_at unknown", study_with(**{"hidden = 16": 'hidden = 16\nlabel_at = "output"'}),
     None),  # fmt: skip
    ("study: labelled_batch 0", study_with(**{"epochs = 2": "epochs = 2\nlabelled_batch = 0"}),
     None),  # fmt: skip
    ("train: m2 with no labelled image", None, [*TRAIN, "--model", "m2", "--labelled", "0"]),
    # data files
    ("--data missing", None, [*DATA, "{w}/nope.npz"]),
    ("--data not .npz", None, [*DATA, "{w}/file.txt"]),
    ("--data garbage .npz", write("bad.npz", b"PK\x03\x04garbage"), [*DATA, "{w}/bad.npz"]),
    ("npz: missing key", npz(y_test=None), None),
    ("npz: labels out of range", npz(y_test=np.full(50, 12)), None),
    ("npz: negative labels", npz(y_train=np.full(200, -1)), None),
    ("npz: float labels", npz(y_test=np.zeros(50)), None),
    ("npz: wrong image shape", npz(x_test=np.zeros((50, 100), np.uint8)), None),
    ("npz: lengths differ", npz(y_test=np.zeros(49, np.int64)), None),
    ("npz: pixels out of range", npz(x_test=np.full((50, 784), 3.0)), None),
    ("npz: an object array", npz(x_test=np.array([{"a": 1}] * 50, dtype=object)), None),
    ("IDX: truncated", edit("idx/t10k-images-idx3-ubyte", lambda r: r[:-7]), [*DATA, "{w}/idx"]),
    ("IDX: wrong magic", edit("idx/t10k-labels-idx1-ubyte", lambda r: b"\0\0\x08\x03" + r[4:]),
     [*DATA, "{w}/idx"]),
    ("IDX: corrupt gzip", lambda w: ((w / "idx/train-labels-idx1-ubyte").unlink(), write(
        "idx/train-labels-idx1-ubyte.gz", b"\x1f\x8b\x08junk")(w)), [*DATA, "{w}/idx"]),
    ("IDX: labels out of range", edit("idx/t10k-labels-idx1-ubyte", lambda r: r[:-1] + b"\x0c"),
     [*DATA, "{w}/idx"]),
    ("IDX: a file missing", lambda w: (w / "idx" / "train-labels-idx1-ubyte").unlink(),
     [*DATA, "{w}/idx"]),
    # run folders
    ("eval: no such folder", None, ["eval", "{w}/nope"]),
    ("eval: not a run folder", None, ["eval", "{w}/idx"]),
    ("eval: corrupt config.json", edit("run/config.json", lambda r: r[:30]), EVAL),
    ("eval: config.json a list", write("run/config.json", "[1, 2]"), EVAL),
    ("eval: config.json unknown key", edit("run/config.json", lambda r: json.dumps(
        {**json.loads(r), "extra": 1}).encode()), EVAL),
    ("eval: unfinished run", lambda w: (w / "run" / "model.json").unlink(), EVAL),
    ("eval: model hash mismatch", edit("run/model.safetensors", flip), EVAL),
    ("eval: corrupt model.json", edit("run/model.json", lambda r: r[:-20]), EVAL),
    ("eval: model.json without config", edit("run/model.json", lambda r: json.dumps(
        {k: v for k, v in json.loads(r).items() if k != "config"}).encode()), EVAL),
    ("eval: model.json config a number", edit("run/model.json", lambda r: json.dumps(
        {**json.loads(r), "config": 5}).encode()), EVAL),
    ("train onto a finished run", None, ["train", "--out", "{w}/run", "--data", NPZ, *RUN_ARGS]),
    ("train onto a foreign folder", None, ["train", "--out", "{w}/idx", "--data", "{w}/m.npz"]),
    ("resume with other settings", None, [*RESUME, "--z", "4"]),
    ("resume asking fewer epochs", None, [*RESUME[:6], "1", *RESUME[7:]]),
    # checkpoints
    ("checkpoint hash mismatch", lambda w: edit(newest_checkpoint(w), flip)(w), RESUME),
    ("checkpoint truncated", lambda w: edit(newest_checkpoint(w), lambda r: r[:100])(w), RESUME),
    ("checkpoint JSON corrupt", edit(f"{CHECKPOINTS}/step-{4:09d}.json", lambda r: r[:10]), RESUME),
    ("checkpoint tensors missing", lambda w: (w / newest_checkpoint(w)).unlink(), RESUME),
]  # fmt: skip


def _argv(w: Path, setup: Callable | None, argv: list[str] | None) -> list[str]:
    given = setup(w) if setup else None
    return [a.replace("{w}", str(w)) for a in (argv or given)]


@pytest.mark.parametrize(("name", "setup", "argv"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(world, tmp_path, capsys, name, setup, argv):
    w = tmp_path / "w"
    shutil.copytree(world, w)
    args = _argv(w, setup, argv)
    before = tree_hash(w)
    capsys.readouterr()
    code = run(args)
    err = capsys.readouterr().err
    assert code not in (0, None), name
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 10, err
    assert "Traceback" not in err
    assert tree_hash(w) == before


@pytest.mark.parametrize(
    "name", ["eval --device gpu", "train --out an existing file", "IDX: truncated",
             "checkpoint hash mismatch", "study: test images lack a digit"],
)  # fmt: skip
def test_as_a_real_process(world, tmp_path, name):
    _, setup, argv = next(c for c in CASES if c[0] == name)
    w = tmp_path / "w"
    shutil.copytree(world, w)
    args = _argv(w, setup, argv)
    before = tree_hash(w)
    proc = vaelab(*args)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert tree_hash(w) == before
