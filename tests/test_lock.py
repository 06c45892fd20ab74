"""One writer per folder: real processes contend for run and study folders."""

from __future__ import annotations

import io
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from helpers_reliability import start, tree_hash, vaelab, write_npz
from vaelab.core.errors import VaelabError
from vaelab.core.lock import LOCK_FILE, FolderLock, folder_lock, read_holder

HOLD = """
import sys, time
from vaelab.core.lock import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(folder: Path, seconds: float = 60):
    """A child process holding `folder`'s lock; returns once it holds it."""
    proc = start("-c", HOLD, str(folder), str(seconds))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_holder_is_refused_at_once_naming_the_first(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "keep.txt").write_text("data")
    proc = hold(folder)
    try:
        before = tree_hash(folder)
        started = time.monotonic()
        with pytest.raises(VaelabError) as err, folder_lock(folder):
            pass
        assert time.monotonic() - started < 1.0
        assert str(err.value) == (
            f"{folder} is in use by process {proc.pid} ({socket.gethostname()})"
        )
        assert tree_hash(folder) == before
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_never_blocks(tmp_path):
    folder = tmp_path / "run"
    proc = hold(folder)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (folder / LOCK_FILE).exists()  # left behind by the kill
    with folder_lock(folder):
        assert read_holder(folder).startswith(f"process {os.getpid()} ")
    assert not (folder / LOCK_FILE).exists()  # released: nothing of the lock is left


def test_lock_leaves_an_existing_folder_as_it_was(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    before = tree_hash(tmp_path)
    with folder_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    assert tree_hash(tmp_path) == before


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("mine")
    with pytest.raises(VaelabError, match="is a file, not a folder"):
        FolderLock(path).acquire()
    assert path.read_text() == "mine"


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with folder_lock(tmp_path), folder_lock(tmp_path):
        pass
    with folder_lock(tmp_path):  # fully released after the outer block
        pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_wait_mode_waits_for_the_holder_and_says_so_once(tmp_path):
    proc = hold(tmp_path, seconds=1.5)
    said = []
    started = time.monotonic()
    with folder_lock(tmp_path, wait=True, timeout=30, on_wait=said.append):
        waited = time.monotonic() - started
    proc.wait()
    assert 0.5 < waited < 20
    holder = f"process {proc.pid} ({socket.gethostname()})"
    assert said == [f"waiting for {tmp_path}, in use by {holder}"]


def test_wait_mode_gives_up_after_its_timeout(tmp_path):
    proc = hold(tmp_path)
    try:
        with pytest.raises(VaelabError, match=f"still in use by process {proc.pid}"):
            FolderLock(tmp_path, wait=True, timeout=0.5).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_two_trains_on_one_folder_then_a_kill(tmp_path):
    """The second `vaelab train` exits 1 at once naming the first; after kill -9 it proceeds."""
    data = write_npz(tmp_path / "m.npz", 200, 50)
    out = tmp_path / "run"
    args = [
        "train",
        "--out",
        str(out),
        "--data",
        str(data),
        "--z",
        "2",
        "--train-size",
        "200",
        "--test-size",
        "50",
        "--checkpoint-every",
        "1",
        "--device",
        "cpu",
        "--resume",
    ]
    first = start("-m", "vaelab", *args, "--epochs", "100000")
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("checkpoints/step-*.json")):  # a trained epoch or more
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGSTOP)  # hold still while the folder is compared
        before = tree_hash(out)
        second = vaelab(*args, "--epochs", "100000")
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"error: {out} is in use by process {first.pid} ({socket.gethostname()})"
        )
        assert tree_hash(out) == before
    finally:
        first.kill()
        first.wait()
    epochs_done = len(list(out.glob("checkpoints/step-*.json")))
    assert epochs_done >= 1
    third = vaelab(*args, "--epochs", "3")
    if third.returncode != 0:  # more than 3 epochs were trained before the kill: ask for more
        third = vaelab(*args, "--epochs", "200")
    assert third.returncode == 0, third.stderr
    assert (out / "model.json").exists() and not (out / LOCK_FILE).exists()


def micro_toml(tmp_path: Path) -> Path:
    from helpers_reliability import MICRO_STUDY

    data = write_npz(tmp_path / "m.npz")
    toml = tmp_path / "micro.toml"
    toml.write_text(MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n'))
    return toml


def test_two_studies_on_one_folder(tmp_path):
    from rich.console import Console

    from vaelab.study.pipeline import run_study

    toml, out = micro_toml(tmp_path), tmp_path / "study"
    proc = hold(out)
    try:
        before = tree_hash(out)
        with pytest.raises(VaelabError, match=f"{out} is in use by process {proc.pid} "):
            run_study(str(toml), out, console=Console(file=io.StringIO()))
        assert tree_hash(out) == before
    finally:
        proc.kill()
        proc.wait()


TRAIN_ONE = """
import sys, time
from vaelab.core.config import load_preset
from vaelab.data import load_mnist
from vaelab.core.lock import folder_lock
from vaelab.study.grid import run_dir_for, with_fingerprint
from vaelab.training.run import TensorData, Trainer
mnist = load_mnist(load_preset(sys.argv[1]).data.path)
cfg = with_fingerprint(load_preset(sys.argv[1]), mnist)
run_cfg = cfg.run_config("vae", 2)
run_dir = run_dir_for(__import__("pathlib").Path(sys.argv[2]), run_cfg)
with folder_lock(run_dir):
    print("locked", flush=True)
    time.sleep(1.0)
    data = TensorData.from_mnist(mnist, run_cfg)
    Trainer(run_cfg, data, run_dir).fit(resume=True)
"""


def test_a_study_waits_for_a_model_held_elsewhere_and_does_not_train_it_again(tmp_path):
    import json

    from rich.console import Console

    from vaelab.study.pipeline import run_study

    toml, out = micro_toml(tmp_path), tmp_path / "study"
    proc = start("-c", TRAIN_ONE, str(toml), str(out))
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    log = io.StringIO()
    run_study(str(toml), out, console=Console(file=log, width=200))
    assert proc.wait() == 0
    assert f"in use by process {proc.pid}" in log.getvalue()
    results = json.loads((out / "results.json").read_text())
    assert results["training"]["vae-z2-seed0"]["reused"] is True
    assert results["training"]["ae-z2-seed0"]["reused"] is False
    folder = out / "models" / results["training"]["vae-z2-seed0"]["folder"]
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2  # trained once


def test_eval_reads_a_run_folder_without_taking_its_lock(tmp_path, capsys):
    from vaelab.cli.app import run

    data = write_npz(tmp_path / "m.npz", 100, 30)
    out = tmp_path / "run"
    args = ["--data", str(data), "--z", "2", "--epochs", "1", "--train-size", "100"]
    assert run(["train", "--out", str(out), "--test-size", "30", *args]) == 0
    proc = hold(out)
    try:
        before = tree_hash(out)
        assert run(["eval", str(out), "--data", str(data), "--device", "cpu"]) == 0
        assert tree_hash(out) == before
    finally:
        proc.kill()
        proc.wait()
