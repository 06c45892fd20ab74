"""Work units on executors: the same models and results whatever runs them; failures stay local."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import make_prototype_mnist
from vaelab.cli.app import run as cli_run
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.errors import VaelabError
from vaelab.data import load_mnist
from vaelab.execution import executors
from vaelab.execution.parallel import ParallelOptions
from vaelab.execution.progress import study_eta
from vaelab.execution.units import data_fingerprint, make_units, run_unit
from vaelab.study.pipeline import run_study

MINI = """
name = "mini"
models = ["ae", "vae", "cvae"]
latents = [2, 4]
[train]
epochs = 3
batch_size = 50
checkpoint_every = 1
eval_every = 1
device = "cpu"
[data]
path = "{data}"
test_size = 60
n_labelled = 100
[experiments]
recon_latents = [4]
kmeans_runs = 2
iwae_samples = 10
iwae_images = 20
elbo_samples = 2
walk_steps = 3
classifier_epochs = 1
"""


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> tuple[Path, Path]:
    """(the study TOML, its data file): 6 models of 3 epochs on 200 learnable images."""
    root = tmp_path_factory.mktemp("mini")
    m = make_prototype_mnist(200, 80)
    data = root / "data.npz"
    np.savez(data, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    toml = root / "mini.toml"
    toml.write_text(MINI.format(data=data))
    return toml, data


@pytest.fixture(scope="module")
def sequential_study(mini, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sequential")
    run_study(str(mini[0]), out, console=Console(quiet=True), parallel=ParallelOptions(jobs=1))
    return out


def model_hashes(study: Path) -> dict[str, str]:
    files = sorted((study / "models").glob("*/model.safetensors"))
    return {f.parent.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def results_less_timings(study: Path) -> dict:
    results = json.loads((study / "results.json").read_text())
    results.pop("timings")
    for record in results["training"].values():
        record.pop("seconds")
    return results


def test_two_jobs_train_the_same_bytes_and_results_as_one(mini, sequential_study, tmp_path):
    out = tmp_path / "two"
    run_study(str(mini[0]), out, console=Console(quiet=True), parallel=ParallelOptions(jobs=2))
    assert len(model_hashes(out)) == 6
    assert model_hashes(out) == model_hashes(sequential_study)
    assert results_less_timings(out) == results_less_timings(sequential_study)
    workers = {json.loads(p.read_text())["pid"] for p in (out / "workers").glob("*.json")}
    assert len(workers) == 2 and os.getpid() not in workers  # two pool processes did the work


def long_run(tmp_path: Path, data: Path, epochs: int) -> tuple[RunConfig, Path]:
    cfg = RunConfig(
        model=ModelConfig(kind="vae", latent=2, hidden=16),
        train=TrainConfig(epochs=epochs, batch_size=20, checkpoint_every=1, device="cpu"),
        data=DataConfig(path=str(data), test_size=20),
    ).validate()
    return cfg, tmp_path / f"run-{epochs}"


def units_for(runs, data: Path, tmp_path: Path, **kw):
    sha = data_fingerprint(load_mnist(data))
    return make_units(runs, data_path=str(data), data_sha256=kw.pop("sha", sha), **kw)


def test_a_failing_unit_fails_alone_and_workers_are_pinned(mini, tmp_path):
    data = mini[1]
    good = units_for([long_run(tmp_path, data, 2)], data, tmp_path, threads=1)
    bad = units_for([long_run(tmp_path / "b", data, 2)], data, tmp_path, threads=1, sha="0" * 64)
    results = executors.process_pool(2, threads=1)(bad + good)
    assert "fingerprint" in results[0]["error"] and results[0]["attempt"] == 1  # not retried
    assert results[1]["threads"] == 1 and results[1]["pid"] != os.getpid()
    assert results[1]["members"][0]["model_sha256"]
    assert not (tmp_path / "b" / "run-2" / "model.json").exists()


def sha_of(run_dir: Path) -> str:
    return hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest()


def kill_when_training(status: Path, run_dir: Path, after_epochs: int = 3) -> int:
    """SIGKILL the worker training `run_dir` once it logged `after_epochs`; returns its pid."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = (
            (run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() else ""
        )
        if status.exists() and lines.count("\n") >= after_epochs:
            pid = json.loads(status.read_text())["pid"]
            assert not (run_dir / "model.json").exists(), "trained too fast to be killed"
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    raise AssertionError("the worker never started training")


def killed_and_resumed(executor, mini, tmp_path: Path) -> None:
    """Train a slow unit and a quick one; kill the slow one's worker mid-run; compare bytes."""
    data = mini[1]
    slow, quick = long_run(tmp_path, data, 60), long_run(tmp_path, data, 2)
    units = units_for([slow, quick], data, tmp_path, threads=1, status_dir=tmp_path / "w")
    results: list = []
    thread = threading.Thread(target=lambda: results.extend(executor(units)))
    thread.start()
    killed = kill_when_training(tmp_path / "w" / f"{units[0].name}.json", slow[1])
    thread.join()
    assert all("error" not in r for r in results), results
    assert results[0]["pid"] != killed and results[0]["members"][0]["first_step"] >= 2 * 6
    reference = units_for([long_run(tmp_path / "ref", data, 60)], data, tmp_path)
    run_unit(reference[0])
    assert sha_of(slow[1]) == sha_of(tmp_path / "ref" / "run-60")
    epochs = [json.loads(line)["epoch"] for line in (slow[1] / "metrics.jsonl").open()]
    assert epochs == list(range(1, 61))  # each epoch logged once, none lost, none twice


def test_a_killed_pool_worker_is_replaced_and_its_unit_resumes(mini, tmp_path):
    killed_and_resumed(executors.process_pool(2, threads=1), mini, tmp_path)


def test_study_eta_from_measured_epochs():
    # 10 epochs left at 2 s, 20 left at the mean of the measured (1.5 s): 20 s + 30 s of work
    states = [(0, 10, 2.0), (5, 25, None), (3, 3, 1.0)]
    assert study_eta(states, jobs=1) == pytest.approx(50.0)
    assert study_eta(states, jobs=2) == pytest.approx(30.0)  # no sooner than the longest run
    assert study_eta([(0, 10, 2.0), (0, 10, 2.0), (0, 10, 2.0)], jobs=2) == pytest.approx(30.0)
    assert study_eta([(0, 5, None)], jobs=1) is None
    assert study_eta([(5, 5, 1.0)], jobs=1) == 0.0


@pytest.mark.parametrize(
    ("jobs", "cores", "gpus", "on_gpu", "expect"),
    [
        (None, 2, 0, False, (1, 2)),
        (None, 16, 0, False, (8, 2)),
        (None, 16, 4, True, (4, 4)),
        (None, 16, 0, False, (8, 2)),
        (5, 2, 0, False, (2, 1)),
        (2, 2, 0, False, (2, 1)),
    ],
)
def test_jobs_times_threads_never_exceed_cores(jobs, cores, gpus, on_gpu, expect):
    chosen, threads, line = executors.choose_jobs(jobs, cores, gpus, on_gpu, n_units=12)
    assert (chosen, threads) == expect and chosen * threads <= cores
    assert line.startswith(f"jobs: {chosen} (") and f"{cores} cores" in line


@pytest.mark.parametrize(
    ("jobs", "n_units", "expect"), [(2, 1, (1, 4)), (4, 2, (2, 2)), (None, 1, (1, 4))]
)
def test_asked_workers_beyond_the_units_give_their_cores_to_the_busy_ones(jobs, n_units, expect):
    chosen, threads, line = executors.choose_jobs(jobs, 4, 0, False, n_units=n_units)
    assert (chosen, threads) == expect
    if jobs is not None:
        assert f"asked {jobs}, one per unit, {n_units} unit" in line


def test_without_ray_the_ray_executor_says_how_to_install_it(mini, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(VaelabError, match=r"pip install 'vaelab\[ray\]'"):
        executors.ray_executor()
    out = Path(mini[0]).parent / "no-ray"
    code = cli_run(["study", "--preset", str(mini[0]), "--out", str(out), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "pip install 'vaelab[ray]'" in err


# --- Ray: a real local cluster, started once for these tests ---------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'vaelab[ray]')")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()
    for number, handler in handlers.items():  # ray.init installs its own; later tests expect ours
        signal.signal(number, handler)


def test_ray_trains_the_same_bytes_and_results(ray_cluster, mini, sequential_study, tmp_path):
    out = tmp_path / "ray"
    options = ParallelOptions(executor="ray")
    run_study(str(mini[0]), out, console=Console(quiet=True), parallel=options)
    assert model_hashes(out) == model_hashes(sequential_study)
    assert results_less_timings(out) == results_less_timings(sequential_study)


def test_a_killed_ray_worker_is_retried_and_resumes(ray_cluster, mini, tmp_path):
    killed_and_resumed(executors.ray_executor(), mini, tmp_path)


def test_the_eta_counts_a_groups_epoch_once():
    from vaelab.execution.progress import _by_unit

    states = [(2, 4, 10.0), (2, 4, 10.0), (1, 4, 12.0)]  # two runs of one group, one alone
    units = _by_unit(states, [0, 0, 1])
    assert units == [(2, 4, 10.0), (1, 4, 12.0)]
    assert study_eta(units, jobs=1) == pytest.approx(2 * 10.0 + 3 * 12.0)
