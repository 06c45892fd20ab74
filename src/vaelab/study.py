"""`vaelab study`: train the grid in every seed, run the experiments, judge the claims, report.

The study folder holds one run folder per model and seed, named by the model and a hash of
every setting that changes its numbers (the run seed and the data's content among them):
running the study again finds finished models and resumes unfinished ones, a changed setting
leads to new folders for the models it touches, and a seed added to `seeds` trains only its
own models. Every experiment runs once per seed (`study_experiments`), the claims are judged
in every seed and again at the milestone epochs of training (`milestones`), and
`study_results` turns it all into results.json and the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from vaelab import checkpoint, fileio
from vaelab.classifier import DigitClassifier
from vaelab.config import RunConfig, StudyConfig, load_preset, to_dict
from vaelab.data import MNIST, load_mnist, test_subset, to_float
from vaelab.errors import VaelabError
from vaelab.experiments.common import Models, StudyData
from vaelab.lock import folder_lock
from vaelab.milestones import claims_over_training
from vaelab.parallel import ParallelOptions, train_units
from vaelab.preflight import NOT_MEASURED, preflight
from vaelab.runner import start_lines
from vaelab.study_experiments import (
    experiment_key,
    experiment_numbers,
    pooled_clustering_figures,
    run_seed,
)
from vaelab.study_results import assemble, print_summary, report_figures, training_record
from vaelab.train import identity, is_finished, resolve_device

RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
RunDirs = dict[tuple[str, int], Path]  # (kind, latent) -> run folder, for one seed


def run_dir_for(out: Path, cfg: RunConfig) -> Path:
    """models/<kind>-z<latent>-s<seed>-<hash of the settings that change the numbers>."""
    key = json.dumps(identity(to_dict(cfg)), sort_keys=True).encode()
    digest = hashlib.sha256(key).hexdigest()[:10]
    m = cfg.model
    return out / "models" / f"{m.kind}-z{m.latent}-s{cfg.train.seed}-{digest}"


def grid_runs(cfg: StudyConfig, out: Path) -> dict[int, RunDirs]:
    """Every run folder of the study: {seed: {(kind, latent): folder}}."""
    return {
        seed: {
            (kind, z): run_dir_for(out, cfg.run_config(kind, z, seed))
            for z in cfg.latents
            for kind in cfg.models
        }
        for seed in cfg.seeds
    }


def train_grid(
    cfg: StudyConfig,
    mnist: MNIST,
    out: Path,
    device: torch.device,
    console: Console,
    parallel: ParallelOptions | None = None,
) -> tuple[dict[int, Models], dict[int, RunDirs], dict[str, Any]]:
    """Every run of every seed trained, resumed or reused; the models per seed, their folders
    and each run's training record."""
    folders = grid_runs(cfg, out)
    runs = [
        (cfg.run_config(kind, z, seed), run_dir)
        for seed, by_key in folders.items()
        for (kind, z), run_dir in by_key.items()
    ]
    reused = {}
    for i, (run_cfg, run_dir) in enumerate(runs, start=1):
        # a folder another study is training: wait for it, then reuse what it finished
        with folder_lock(run_dir, wait=True, on_wait=console.print):
            reused[run_dir] = is_finished(run_dir, run_cfg)
        if reused[run_dir]:
            m = run_cfg.model
            console.print(
                f"[{i}/{len(runs)}] {m.kind.upper()} z={m.latent} seed {run_cfg.train.seed}: "
                f"reusing {run_dir.name}"
            )
    train_units(runs, mnist, out, device, console, parallel)
    models: dict[int, Models] = {}
    records: dict[str, Any] = {}
    for seed, by_key in folders.items():
        for (kind, z), run_dir in by_key.items():
            models.setdefault(seed, {})[(kind, z)], _ = checkpoint.load_model(run_dir, "cpu")
            record = training_record(run_dir, kind, z, seed, reused[run_dir])
            records[f"{kind}-z{z}-seed{seed}"] = record
    return models, folders, records


def study_data(cfg: StudyConfig, mnist: MNIST) -> StudyData:
    """The test subset (the same for every seed) and the training images with true labels."""
    d = cfg.data
    n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
    test = test_subset(mnist.y_test, d.test_size, d.seed)
    return StudyData(
        x_test=torch.from_numpy(to_float(mnist.x_test[test])),
        y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)),
        x_train=torch.from_numpy(to_float(mnist.x_train[:n])),
        y_train=torch.from_numpy(mnist.y_train[:n].astype(np.int64)),
    )


def data_key(cfg: StudyConfig) -> dict[str, Any]:
    """The data settings that change numbers: content fingerprint and splits, not the path."""
    return {k: v for k, v in to_dict(cfg.data).items() if k not in ("path", "source")}


def _judge_folder(cfg: StudyConfig, out: Path) -> Path:
    judge = DigitClassifier(epochs=cfg.experiments.classifier_epochs, seed=cfg.experiments.seed)
    key = json.dumps({"params": judge.get_params(), "data": data_key(cfg)}, sort_keys=True)
    return out / "classifier" / hashlib.sha256(key.encode()).hexdigest()[:10]


def digit_judge(cfg: StudyConfig, data: StudyData, out: Path) -> tuple[DigitClassifier, str]:
    """The classifier that reads reconstructions and walks, trained once per study folder."""
    judge = DigitClassifier(epochs=cfg.experiments.classifier_epochs, seed=cfg.experiments.seed)
    folder = _judge_folder(cfg, out)
    if (folder / "classifier.json").exists():
        return DigitClassifier.load(folder), folder.name
    judge.fit(data.x_train, data.y_train)
    judge.save(folder)
    return judge, folder.name


def run_study(
    preset: str,
    out: Path,
    *,
    data_path: Path | None = None,
    device: str | None = None,
    console: Console | None = None,
    parallel: ParallelOptions | None = None,
) -> Path:
    """Run the study `preset` (a name or a TOML path) into `out`; returns the report's path.

    Run again, it reuses every finished model and experiment and resumes an interrupted one.
    """
    console = console or Console()
    started = time.perf_counter()
    cfg = load_preset(preset)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, path=str(data_path) if data_path else cfg.data.path),
        train=dataclasses.replace(cfg.train, device=device or cfg.train.device),
    ).validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaelabError(f"{out} is a file, not a study folder")
    timings: dict[str, Any] = {}
    t = time.perf_counter()
    mnist = load_mnist(cfg.data.path)
    cfg = with_fingerprint(cfg, mnist)
    timings["data"] = _step(time.perf_counter() - t, "read")
    skipped = preflight(cfg, mnist)  # every check that can fail comes before any work
    with folder_lock(out):  # one study per folder
        return _run_locked(cfg, mnist, out, skipped, timings, started, console, parallel)


def _run_locked(
    cfg: StudyConfig,
    mnist: MNIST,
    out: Path,
    skipped: dict[str, str],
    timings: dict[str, Any],
    started: float,
    console: Console,
    parallel: ParallelOptions | None,
) -> Path:
    torch_device = resolve_device(cfg.train.device)
    data = study_data(cfg, mnist)
    n_runs = len(cfg.models) * len(cfg.latents) * len(cfg.seeds)
    seeds = ", ".join(map(str, cfg.seeds))
    console.print(f"study {cfg.name!r}: {n_runs} models (seeds {seeds}) into {out}")
    for line in start_lines(torch_device, mnist, len(data.y_test)):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    t = time.perf_counter()
    models, folders, training = train_grid(cfg, mnist, out, torch_device, console, parallel)
    trained = sum(not r["reused"] for r in training.values())
    timings["training"] = _step(
        time.perf_counter() - t, f"{trained} trained, {len(training) - trained} reused"
    )
    t = time.perf_counter()
    judge_existed = _judge_folder(cfg, out).joinpath("classifier.json").exists()
    judge, judge_folder = digit_judge(cfg, data, out)
    timings["digit classifier"] = _step(
        time.perf_counter() - t, "reused" if judge_existed else "computed"
    )
    per_seed = {}
    for seed in cfg.seeds:
        names = [run_dir.name for run_dir in folders[seed].values()]
        key = experiment_key(cfg, names, judge_folder, data_key(cfg))
        first = seed == cfg.seeds[0]
        per_seed[seed] = run_seed(
            models[seed],
            data,
            cfg,
            judge,
            out,
            seed,
            key,
            console,
            figures=first,
            timings=timings,
            skipped=skipped,
        )
    numbers = {seed: {r.name: r.numbers for r in results} for seed, results in per_seed.items()}
    pooled = pooled_clustering_figures(numbers, cfg.experiments, out)
    figures = report_figures(per_seed[cfg.seeds[0]], pooled)
    results = assemble(cfg, mnist, data, training, per_seed, figures, {"steps": timings})
    t = time.perf_counter()
    over = _claims_over_training(
        cfg, folders, data, judge, judge_folder, skipped, out, results, console
    )
    computed, pairs = over.pop("computed"), (len(over["epochs"]) - 1) * len(cfg.seeds)
    results["claims_over_training"] = over
    what = f"{computed} of {pairs} (epoch, seed) pairs computed, the rest reused"
    timings["claims at milestone epochs"] = _step(time.perf_counter() - t, what)
    results[NOT_MEASURED] = skipped
    results["timings"]["total"] = time.perf_counter() - started
    return _write_outputs(cfg, results, models[cfg.seeds[0]], data, judge, out, console)


def _claims_over_training(
    cfg: StudyConfig,
    folders: dict[int, RunDirs],
    data: StudyData,
    judge: DigitClassifier,
    judge_folder: str,
    skipped: dict[str, str],
    out: Path,
    results: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """The claims x epochs map: milestone epochs from the saved weights, then the final one."""
    final = cfg.train.epochs
    key = experiment_key(cfg, [], judge_folder, data_key(cfg))

    def numbers_of(models: Models, e: Any) -> dict[str, Any]:
        return experiment_numbers(models, data, e, judge, skipped)

    found = claims_over_training(
        folders, cfg.experiments, numbers_of, out, key, log=console.print, before=final
    )
    found["epochs"].append(final)
    before = len(found["epochs"]) - 1
    for claim in results["claims"]:  # the last column: the final numbers, judged alike
        number = str(claim["number"])
        found["verdicts"].setdefault(number, [None] * before).append(claim["verdict"])
        outcomes = {c["name"]: c["outcome"] for c in claim["comparisons"]}
        found["comparisons"].setdefault(number, [{} for _ in range(before)]).append(outcomes)
    return found


def _write_outputs(
    cfg: StudyConfig,
    results: dict[str, Any],
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    out: Path,
    console: Console,
) -> Path:
    from vaelab.explorer import EXPLORER_FILE, write_explorer
    from vaelab.report import write_report

    fileio.write_json(out / RESULTS_FILE, results)
    steps = cfg.experiments.walk_steps
    write_explorer(models, data, judge, out / EXPLORER_FILE, title=cfg.name, walk_steps=steps)
    report = write_report(results, out / REPORT_FILE)
    print_summary(results, console)
    return report


def with_fingerprint(cfg: StudyConfig, mnist: MNIST) -> StudyConfig:
    """`cfg` with the data's content fingerprint and source; a pinned other fingerprint fails."""
    if cfg.data.sha256 and cfg.data.sha256 != mnist.sha256:
        raise VaelabError(
            f"data.sha256 is {cfg.data.sha256[:12]}..., but {mnist.source} has "
            f"{mnist.sha256[:12]}...: other data than the settings ask for"
        )
    data = dataclasses.replace(cfg.data, sha256=mnist.sha256, source=mnist.source)
    return dataclasses.replace(cfg, data=data)


def _step(seconds: float, what: str) -> dict[str, Any]:
    """One step of this invocation: how long it took here and what it did (computed/reused)."""
    return {"seconds": seconds, "what": what}
