"""`vaelab study`: train the grid in every seed, run the experiments, judge the claims, report.

The grid's run folders and their training are `grid`'s; every experiment runs once per seed
(`per_seed`), the claims are judged in every seed and again at the milestone steps of
training (`milestones`), and `results` turns it all into results.json and the summary.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from vaelab.core import fileio
from vaelab.core.config import StudyConfig, load_preset
from vaelab.core.device import resolve_device
from vaelab.core.errors import VaelabError
from vaelab.core.folders import StudyFolder
from vaelab.core.lock import folder_lock
from vaelab.data.mnist import MNIST, load_mnist
from vaelab.execution.parallel import ParallelOptions
from vaelab.execution.runner import start_lines
from vaelab.experiments import rate_distortion
from vaelab.experiments.common import Models, StudyData
from vaelab.models import kinds, spec
from vaelab.models.classifier import DigitClassifier
from vaelab.report.explorer import write_explorer
from vaelab.report.page import write_report
from vaelab.study.context import StudyContext
from vaelab.study.grid import (
    RunDirs,
    data_key,
    digit_judge,
    point_label,
    study_data,
    train_grid,
    with_fingerprint,
)
from vaelab.study.milestones import claims_over_training, map_columns
from vaelab.study.per_seed import (
    experiment_key,
    experiment_numbers,
    pooled_clustering_figures,
    run_seed,
)
from vaelab.study.preflight import NOT_MEASURED, preflight
from vaelab.study.regimes import regime_table
from vaelab.study.results import assemble, print_summary, report_figures
from vaelab.study.ssl import run_ssl
from vaelab.study.sweep import claims_over_settings
from vaelab.study.variants import headline_models, judge_again


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
    cfg = kinds.check_settings(load_preset(preset))
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
    if cfg.label_counts:  # the semi-supervised study, not the article's
        have = len(mnist.y_train[: cfg.data.train_size]) - cfg.data.validation
        if max(cfg.label_counts) > have:
            raise VaelabError(
                f"label_counts asks for {max(cfg.label_counts)} labelled images of {have}"
            )
        if cfg.data.test_size is not None and cfg.data.test_size < len(mnist.y_test):
            raise VaelabError(
                "the semi-supervised study reads M2's test error at each epoch on every test "
                f"image: leave data.test_size unset (it is {cfg.data.test_size})"
            )
        with folder_lock(out):
            StudyFolder(out).clear_temporaries()
            return run_ssl(cfg, mnist, out, resolve_device(cfg.train.device), console, parallel)
    skipped = preflight(cfg, mnist)  # every check that can fail comes before any work
    with folder_lock(out):  # one study per folder
        StudyFolder(out).clear_temporaries()  # what a killed writer left behind
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
    data = study_data(cfg, mnist, cfg.eval_images[0])
    ctx = StudyContext(cfg, mnist, data, out, console, skipped, timings)
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
    judge, judge_name, reused = digit_judge(cfg, data, out)
    ctx.judge, ctx.judge_name = judge, judge_name
    timings["digit classifier"] = _step(time.perf_counter() - t, "reused" if reused else "computed")
    headline = cfg.headline()
    sweep = (models, folders)
    models, folders = models[headline], folders[headline]
    per_seed = {}
    for seed in cfg.seeds:
        names = [run_dir.name for run_dir in folders[seed].values()]
        key = experiment_key(cfg, names, judge_name, data_key(cfg))
        first = seed == cfg.seeds[0]
        per_seed[seed] = run_seed(ctx, models[seed], seed, key, figures=first)
    numbers = {seed: {r.name: r.numbers for r in results} for seed, results in per_seed.items()}
    pooled = pooled_clustering_figures(numbers, cfg.experiments, out)
    figures = report_figures(per_seed[cfg.seeds[0]], pooled)
    results = assemble(cfg, mnist, data, training, per_seed, figures, {"steps": timings})
    t = time.perf_counter()
    what = judge_again(ctx, models, folders, results)
    timings["claims on other images, AE losses and families"] = _step(time.perf_counter() - t, what)
    t = time.perf_counter()
    over, computed = _claims_over_training(ctx, folders, results)
    pairs = (len(over["steps"]) - 1) * len(cfg.seeds)
    results["claims_over_training"] = over
    what = f"{computed} of {pairs} (step, seed) pairs computed, the rest reused"
    timings["claims at milestone steps"] = _step(time.perf_counter() - t, what)
    t = time.perf_counter()
    settings = claims_over_settings(ctx, *sweep, numbers, results)
    results["claims_over_settings"] = settings.pop("map")
    results["experiments"]["rate_distortion"] = {"rows": settings["rows"]}  # every point
    results["figures"]["rate_distortion"] = [
        dataclasses.asdict(f)
        for f in rate_distortion.figures(settings["rows"], cfg.experiments, out)
    ]
    timings["claims at other (C, k) points"] = _step(time.perf_counter() - t, settings["what"])
    results["regimes"] = regime_table(cfg, out, results)
    results[NOT_MEASURED] = skipped
    results["timings"]["total"] = time.perf_counter() - started
    return _write_outputs(cfg, results, models[cfg.seeds[0]], data, judge, out, console)


def _claims_over_training(
    ctx: StudyContext, folders: dict[int, RunDirs], results: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    """The claims x training map (milestone steps from the saved weights, then the last), and
    how many (step, seed) pairs were computed now."""
    cfg, data = ctx.cfg, ctx.data
    per = cfg.train.steps_per_epoch(len(data.x_train))
    final = cfg.train.total_steps(len(data.x_train))
    key = experiment_key(cfg, [], ctx.judge_name, data_key(cfg))

    def numbers_of(models: Models, e: Any) -> dict[str, Any]:
        return experiment_numbers(headline_models(cfg, models), data, e, ctx.judge, ctx.skipped)

    found, computed = claims_over_training(
        folders, cfg.experiments, numbers_of, ctx.out, key,
        steps_per_epoch=per, log=ctx.log, before=final,
    )  # fmt: skip
    found.columns |= map_columns([*found.columns["steps"], final], per)
    found.append(results["claims"])  # the last column: the final numbers, judged alike
    last, label = len(found) - 1, found.columns["labels"][-1]
    return found.to_dict(last, cfg.seeds, "training", f"the last column ({label})"), computed


def _write_outputs(
    cfg: StudyConfig,
    results: dict[str, Any],
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    out: Path,
    console: Console,
) -> Path:
    folder = StudyFolder(out)
    fileio.write_json(folder.results, results)
    steps = cfg.experiments.walk_steps
    title = f"{cfg.name} ({point_label(cfg.headline())})"  # the (C, k) of its VAEs and CVAEs
    drawn = {
        key: m
        for key, m in models.items()
        if spec.logits_label_decoder(m.cfg, kinds.record(m.cfg.kind).traits)
    }
    ends = results["experiments"].get("interpolation", {}).get("endpoints", {}).values()
    examples = [(data.y_test == d).nonzero() for d in cfg.experiments.recon_digits]
    write_explorer(
        drawn,
        data,
        judge,
        folder.explorer,
        title=title,
        walk_steps=steps,
        seed=cfg.seeds[0],
        seeds=cfg.seeds,
        walks=[(e["start_index"], e["end_index"]) for e in ends],
        examples=[int(hits[0]) for hits in examples if len(hits)],
    )
    report = write_report(results, folder.report)
    print_summary(results, console)
    return report


def _step(seconds: float, what: str) -> dict[str, Any]:
    """One step of this invocation: how long it took here and what it did (computed/reused)."""
    return {"seconds": seconds, "what": what}
