"""Faults: kill -9 anywhere in a study, a full or read-only disk, damaged files.

The micro study (2 models x 2 latent sizes, 300 images, 2 epochs, a checkpoint per epoch)
takes a few seconds, so a study can be killed many times and still be compared, byte for
byte, with one that ran without interruption.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from helpers_reliability import MICRO_STUDY, start, tree_hash, write_npz
from vaelab.cli.app import run
from vaelab.core import fileio
from vaelab.core.lock import LOCK_FILE

KILLS = 8  # each kill lands at a uniform moment over the micro study


def micro(tmp: Path) -> Path:
    data = write_npz(tmp / "m.npz")
    toml = tmp / "micro.toml"
    toml.write_text(MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n'))
    return toml


def comparable(out: Path) -> tuple[dict, dict[str, str]]:
    """results.json less what may differ between runs (timings, reuse), and the model bytes."""
    results = json.loads((out / "results.json").read_text())
    results.pop("timings")
    for record in results["training"].values():
        record.pop("seconds")
        record.pop("reused")
    for figures in results["figures"].values():
        for f in figures:
            f.pop("seconds", None)
    models = {
        p.parent.name: tree_hash(p)["."] for p in sorted(out.glob("models/*/model.safetensors"))
    }
    return results, models


@pytest.fixture(autouse=True)
def one_thread():
    """In-process studies run with the one thread of the subprocesses they are compared with
    (OMP_NUM_THREADS=1), whatever an earlier test left torch with."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path, float]:
    """An uninterrupted micro study run as a subprocess, and how long that took."""
    tmp = tmp_path_factory.mktemp("reference")
    toml = micro(tmp)
    started = time.monotonic()
    proc = start("-m", "vaelab", "study", "--preset", str(toml), "--out", str(tmp / "study"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return toml, tmp / "study", time.monotonic() - started


def forked_study(toml: Path, out: Path) -> int:
    """`vaelab study` in a forked child of this process: no start-up time, killable anywhere."""
    pid = os.fork()
    if pid == 0:  # the child: run the CLI, then leave without running the parent's cleanup
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            code = run(["study", "--preset", str(toml), "--out", str(out)])
        finally:
            os._exit(code)
    return pid


def test_kill_9_anywhere_then_rerun_gives_the_same_study(reference, tmp_path):
    """20 kills at moments drawn uniformly over one study's duration, each followed by a rerun
    that may be killed in turn; every study that finishes must equal an uninterrupted one."""
    toml, ref_out, _ = reference
    started = time.monotonic()
    pid = forked_study(toml, tmp_path / "timed")
    assert os.waitpid(pid, 0)[1] == 0
    duration = time.monotonic() - started
    assert comparable(tmp_path / "timed") == comparable(ref_out)
    rng = random.Random(8)
    kills, completed = 0, 0
    out = tmp_path / "study-0"
    for _ in range(4 * KILLS):
        if kills == KILLS:
            break
        pid = forked_study(toml, out)
        time.sleep(rng.uniform(0.0, duration))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:  # the chain of reruns finished its study: check it, start a new chain
            assert status == 0
            assert comparable(out) == comparable(ref_out)
            completed += 1
            out = tmp_path / f"study-{completed}"
            continue
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
    assert kills == KILLS
    proc = start("-m", "vaelab", "study", "--preset", str(toml), "--out", str(out))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert comparable(out) == comparable(ref_out)
    assert not list(out.rglob(LOCK_FILE))


# --- a full or read-only disk ------------------------------------------------------------

TARGETS = {
    "checkpoint": lambda p: p.parent.name == "checkpoints" and p.name.endswith(".safetensors"),
    "model": lambda p: p.name == "model.safetensors",
    "metrics": lambda p: p.name == "metrics.jsonl",
    "experiment cache": lambda p: p.name == "experiments.json",
    "figure": lambda p: p.parent.name == "figures",
    "results": lambda p: p.name == "results.json",
    "report": lambda p: p.name == "report.html",
}


def final_name(path: Path) -> str:
    """The file a temp file `.<name>.<pid>.<uuid>.tmp` stands for."""
    return path.name[1:].removesuffix(".tmp").rsplit(".", 2)[0]


# Every target on a full disk; a read-only disk takes the same path (one failed write) and is
# checked on the first and the last file a study writes.
FAILED_WRITES = [(t, errno.ENOSPC) for t in TARGETS] + [
    ("checkpoint", errno.EROFS),
    ("report", errno.EROFS),
]


@pytest.mark.parametrize(("target", "code"), FAILED_WRITES)
def test_a_failed_write_is_one_line_and_leaves_earlier_files_intact(
    reference, tmp_path, monkeypatch, capsys, target, code
):
    toml, ref_out, _ = reference
    out = tmp_path / "study"
    if target not in ("checkpoint", "model", "metrics"):  # fails after training: reuse models
        for folder in ("models", "classifier"):
            shutil.copytree(ref_out / folder, out / folder)
    hit = TARGETS[target]
    real_open = open
    seen: dict[str, object] = {}

    def failing_open(file, mode="r", *args, **kwargs):
        path = Path(file)
        real = path.with_name(final_name(path)) if path.name.endswith(".tmp") else path
        if "r" not in mode and hit(real) and "snapshot" not in seen:
            seen["snapshot"] = _files(out)
            seen["path"] = real
            raise OSError(code, os.strerror(code))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", failing_open, raising=False)
    assert run(["study", "--preset", str(toml), "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "snapshot" in seen, f"no write to a {target} happened"
    assert err == [f"error: cannot write {seen['path']}: {os.strerror(code)}"]
    assert _files(out) == seen["snapshot"]  # nothing written before was touched
    if code == errno.ENOSPC:  # space freed: the same command finishes the study
        monkeypatch.undo()
        assert run(["study", "--preset", str(toml), "--out", str(out)]) == 0


def _files(out: Path) -> dict[str, str]:
    """Every file's hash; the lock file and empty folders go when the lock is released."""
    return {k: v for k, v in tree_hash(out).items() if not k.endswith(LOCK_FILE) and v != "dir"}


# --- damaged files ------------------------------------------------------------------------


@pytest.fixture
def finished(reference, tmp_path) -> tuple[Path, Path]:
    toml, ref_out, _ = reference
    out = tmp_path / "study"
    shutil.copytree(ref_out, out)
    return toml, out


def _flip_a_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_a_damaged_model_is_reported_not_used(finished, capsys):
    toml, out = finished
    model = sorted(out.glob("models/*/model.safetensors"))[0]
    _flip_a_byte(model)
    assert run(["study", "--preset", str(toml), "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {model} is corrupt (hash mismatch)"]


def test_a_damaged_checkpoint_is_reported_not_used(finished, capsys):
    toml, out = finished
    folder = sorted(out.glob("models/*"))[0]
    (folder / "model.json").unlink()  # unfinished: the next run resumes from the checkpoint
    newest = sorted(folder.glob("checkpoints/step-*.safetensors"))[-1]
    _flip_a_byte(newest)
    assert run(["study", "--preset", str(toml), "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: checkpoint {newest} is corrupt (hash mismatch)"
    ]


@pytest.mark.parametrize("damage", ["number", "figure", "truncated"])
def test_a_damaged_experiment_cache_is_rebuilt(finished, damage):
    toml, out = finished
    cache_path = out / "experiments.json"
    cache = json.loads(cache_path.read_text())
    if damage == "number":
        cache["clustering@seed0"]["numbers"]["clusters"] = 3
        cache_path.write_text(json.dumps(cache))
    elif damage == "figure":
        _flip_a_byte(out / cache["latent@seed0"]["figures"][0]["path"])
    else:
        cache_path.write_bytes(cache_path.read_bytes()[:100])
    expected = comparable(out)
    assert run(["study", "--preset", str(toml), "--out", str(out)]) == 0
    assert comparable(out) == expected
    rebuilt = json.loads(cache_path.read_text())
    assert rebuilt["clustering@seed0"]["numbers"]["clusters"] == 10
    for entry in rebuilt.values():
        for f in entry["figures"]:
            assert tree_hash(out / f["path"])["."] == entry["figure_sha256"][f["path"]]


def test_a_damaged_data_cache_is_never_used(tmp_path):
    from conftest import make_prototype_mnist
    from vaelab.data import ROLES, load_mnist
    from vaelab.data.mnist import _write_cache

    m = make_prototype_mnist(50, 20)
    arrays = {r: getattr(m, r) for r in ROLES}
    _write_cache(tmp_path / "mnist", arrays, "test")
    kwargs = dict(cache_dir=tmp_path, mirrors=(), use_hub=False, expect_sizes=None)
    assert load_mnist(**kwargs).source.startswith("cache")
    _flip_a_byte(tmp_path / "mnist" / "x_test.npy")
    with pytest.raises(Exception, match="could not get MNIST: cache .* empty or invalid"):
        load_mnist(**kwargs)
