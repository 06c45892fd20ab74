"""`vaelab study`: train the grid, run the four experiments, judge the claims, write the report.

The study folder holds one run folder per model, named by the model and a hash of every
setting that changes its numbers: running the study again finds finished models and
resumes unfinished ones, and a changed setting leads to new folders for the models it
touches while the others are reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from vaelab import checkpoint, fileio
from vaelab.claims import judge_claims
from vaelab.classifier import DigitClassifier
from vaelab.config import RunConfig, StudyConfig, load_preset, to_dict
from vaelab.data import MNIST, load_mnist, test_subset, to_float
from vaelab.experiments import clustering, interpolation, latent, reconstruction
from vaelab.experiments.common import ExperimentResult, Figure, Models, StudyData
from vaelab.group import Member, compact_data, group_key, train_group
from vaelab.progress import RichReporter, make_progress
from vaelab.train import identity, is_finished, read_metrics, resolve_device

RESULTS_FILE = "results.json"
EXPERIMENT_CACHE = "experiments.json"
REPORT_FILE = "report.html"


def run_dir_for(out: Path, cfg: RunConfig) -> Path:
    """models/<kind>-z<latent>-<hash of the settings that change the numbers>."""
    key = json.dumps(identity(to_dict(cfg)), sort_keys=True).encode()
    digest = hashlib.sha256(key).hexdigest()[:10]
    return out / "models" / f"{cfg.model.kind}-z{cfg.model.latent}-{digest}"


def train_grid(
    cfg: StudyConfig, mnist: MNIST, out: Path, device: torch.device, console: Console
) -> tuple[Models, dict[str, Any]]:
    """Every (model, z) of the grid, trained, resumed or loaded; and each one's training record.

    The runs left to train go in groups of one kind (see `vaelab.group`), trained as one
    stacked computation over one shared copy of the training images.
    """
    grid = [(kind, z) for z in cfg.latents for kind in cfg.models]
    groups: dict[tuple[Any, ...], list[tuple[RunConfig, Path]]] = {}
    reused = {}
    with make_progress(console) as progress:
        for kind, z in grid:
            run_cfg = cfg.run_config(kind, z)
            run_dir = run_dir_for(out, run_cfg)
            reused[(kind, z)] = is_finished(run_dir, run_cfg)
            if reused[(kind, z)]:
                progress.console.print(f"{kind.upper()} z={z}: reusing {run_dir.name}")
            else:
                groups.setdefault(group_key(run_cfg), []).append((run_cfg, run_dir))
        images = torch.from_numpy(mnist.x_train).to(device) if groups else None
        for i, runs in enumerate(groups.values(), start=1):
            members = [Member(c, compact_data(mnist, c, device, images), d) for c, d in runs]
            latents = ",".join(str(c.model.latent) for c, _ in runs)
            reporter = RichReporter(progress, label=f"[{i}/{len(groups)}] z={latents}: ")
            train_group(members, resume=True, reporter=reporter)
    models: Models = {}
    records: dict[str, Any] = {}
    for kind, z in grid:
        run_dir = run_dir_for(out, cfg.run_config(kind, z))
        models[(kind, z)], _ = checkpoint.load_model(run_dir, "cpu")
        records[f"{kind}-z{z}"] = _training_record(run_dir, kind, z, reused[(kind, z)])
    return models, records


def _training_record(run_dir: Path, kind: str, z: int, reused: bool) -> dict[str, Any]:
    rows = read_metrics(run_dir)
    last = rows[-1] if rows else {}
    tested = [r for r in rows if "test_loss" in r]
    return {
        "kind": kind,
        "latent": z,
        "folder": str(run_dir.name),
        "reused": reused,
        "epochs": last.get("epoch", 0),
        "seconds": sum(r.get("seconds", 0.0) for r in rows),
        "train_loss": last.get("loss"),
        "test_loss": tested[-1]["test_loss"] if tested else None,
        "loss_curve": [r["loss"] for r in rows],
    }


def study_data(cfg: StudyConfig, mnist: MNIST) -> StudyData:
    d = cfg.data
    n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
    test = test_subset(mnist.y_test, d.test_size, d.seed)
    return StudyData(
        x_test=torch.from_numpy(to_float(mnist.x_test[test])),
        y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)),
        x_train=torch.from_numpy(to_float(mnist.x_train[:n])),
        y_train=torch.from_numpy(mnist.y_train[:n].astype(np.int64)),
    )


def digit_judge(cfg: StudyConfig, data: StudyData, out: Path) -> tuple[DigitClassifier, str]:
    """The classifier that reads reconstructions and walks, trained once per study folder."""
    judge = DigitClassifier(epochs=cfg.experiments.classifier_epochs, seed=cfg.experiments.seed)
    key = json.dumps({"params": judge.get_params(), "data": to_dict(cfg.data)}, sort_keys=True)
    folder = out / "classifier" / hashlib.sha256(key.encode()).hexdigest()[:10]
    if (folder / "classifier.json").exists():
        return DigitClassifier.load(folder), folder.name
    judge.fit(data.x_train, data.y_train)
    judge.save(folder)
    return judge, folder.name


def run_experiments(
    cfg: StudyConfig,
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    out: Path,
    key: str,
    console: Console,
) -> list[ExperimentResult]:
    """Run the four experiments, or reuse the last run's results where nothing changed.

    `key` names everything the experiments depend on (settings, models, the judge); the
    cache keeps only the latest result of each experiment, whose figures are the ones on disk.
    """
    e = cfg.experiments
    steps = [
        ("reconstruction", lambda: reconstruction.run(models, data, e, out, judge)),
        ("interpolation", lambda: interpolation.run(models, data, e, out, judge)),
        ("latent", lambda: latent.run(models, data, e, out)),
        ("clustering", lambda: clustering.run(models, data, e, out)),
    ]
    cache = _read_cache(out / EXPERIMENT_CACHE)
    results = []
    for i, (name, step) in enumerate(steps, start=1):
        cached = cache.get(name)
        if cached and cached["key"] == key and _figures_exist(out, cached["figures"]):
            result = ExperimentResult(
                name, cached["numbers"], [Figure(**f) for f in cached["figures"]], cached["seconds"]
            )
            console.print(f"experiment {i}/{len(steps)}: {name}: reusing the last results")
        else:
            with console.status(f"experiment {i}/{len(steps)}: {name}"):
                started = time.perf_counter()
                result = step()
                result.seconds = time.perf_counter() - started
            console.print(f"experiment {i}/{len(steps)}: {name} done in {result.seconds:.1f} s")
            cache[name] = {"key": key, **_result_dict(result)}
            fileio.write_json(out / EXPERIMENT_CACHE, cache)
        results.append(result)
    return results


def _result_dict(result: ExperimentResult) -> dict[str, Any]:
    return {
        "numbers": result.numbers,
        "seconds": result.seconds,
        "figures": [dataclasses.asdict(f) for f in result.figures],
    }


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _figures_exist(out: Path, figures: list[dict[str, Any]]) -> bool:
    return all((out / f["path"]).is_file() for f in figures)


def experiment_key(cfg: StudyConfig, out: Path, judge_folder: str) -> str:
    runs = sorted(
        run_dir_for(out, cfg.run_config(k, z)).name for k in cfg.models for z in cfg.latents
    )
    blob = {
        "experiments": to_dict(cfg.experiments),
        "data": to_dict(cfg.data),
        "runs": runs,
        "judge": judge_folder,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def run_study(
    preset: str,
    out: Path,
    *,
    data_path: Path | None = None,
    device: str | None = None,
    console: Console | None = None,
) -> Path:
    """Run the study `preset` (a name or a TOML path) into `out`; returns the report's path."""
    console = console or Console()
    cfg = load_preset(preset)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, path=str(data_path) if data_path else cfg.data.path),
        train=dataclasses.replace(cfg.train, device=device or cfg.train.device),
    ).validate()
    out = Path(out)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    mnist = load_mnist(cfg.data.path)
    console.print(f"study {cfg.name!r}: {len(cfg.models) * len(cfg.latents)} models into {out}")
    t = time.perf_counter()
    models, training = train_grid(cfg, mnist, out, resolve_device(cfg.train.device), console)
    timings["training"] = time.perf_counter() - t
    data = study_data(cfg, mnist)
    t = time.perf_counter()
    judge, judge_folder = digit_judge(cfg, data, out)
    timings["digit classifier"] = time.perf_counter() - t
    key = experiment_key(cfg, out, judge_folder)
    experiments = run_experiments(cfg, models, data, judge, out, key, console)
    timings |= {f"experiment: {r.name}": r.seconds for r in experiments}
    results = assemble(cfg, mnist, data, training, experiments, timings)
    results["timings"]["total"] = time.perf_counter() - started
    from vaelab.report import write_report

    fileio.write_json(out / RESULTS_FILE, results)
    report = write_report(results, experiments, out / REPORT_FILE)
    print_summary(results, console)
    return report


def assemble(
    cfg: StudyConfig,
    mnist: MNIST,
    data: StudyData,
    training: dict[str, Any],
    experiments: list[ExperimentResult],
    timings: dict[str, float],
) -> dict[str, Any]:
    """results.json: the settings, the data, every number of every experiment, the verdicts."""
    numbers = {r.name: r.numbers for r in experiments}
    return {
        "config": to_dict(cfg),
        "data": {
            "source": mnist.source,
            "train_images": len(data.x_train),
            "test_images": len(data.x_test),
        },
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(resolve_device(cfg.train.device)),
            "threads": torch.get_num_threads(),
        },
        "training": training,
        "experiments": numbers,
        "figures": {r.name: _result_dict(r)["figures"] for r in experiments},
        "claims": [c.to_dict() for c in judge_claims(numbers)],
        "timings": timings,
    }


def print_summary(results: dict[str, Any], console: Console) -> None:
    """Test NLL per model and latent size, then the claims and their verdicts."""
    rec = results["experiments"]["reconstruction"]
    nll = Table(
        "model",
        *[f"z={z}" for z in rec["latents_all"]],
        title="Test reconstruction NLL (nats/image)",
    )
    for mode, by_z in rec["table"].items():
        nll.add_row(
            mode,
            *[f"{by_z[str(z)]['nll']:.1f}" if str(z) in by_z else "-" for z in rec["latents_all"]],
        )
    console.print(nll)
    claims = Table("#", "the article's claim", "verdict", title="Claims, judged on this run")
    for claim in results["claims"]:
        claims.add_row(str(claim["number"]), claim["text"], claim["verdict"])
    console.print(claims)
    console.print(f"total time: {results['timings']['total']:.0f} s")
