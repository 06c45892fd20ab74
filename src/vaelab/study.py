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
from vaelab.errors import VaelabError
from vaelab.experiments import clustering, interpolation, latent, reconstruction, style
from vaelab.experiments.common import ExperimentResult, Figure, Models, StudyData
from vaelab.lock import folder_lock
from vaelab.parallel import ParallelOptions, train_units
from vaelab.preflight import NOT_MEASURED, preflight
from vaelab.runner import start_lines
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
    cfg: StudyConfig,
    mnist: MNIST,
    out: Path,
    device: torch.device,
    console: Console,
    parallel: ParallelOptions | None = None,
) -> tuple[Models, dict[str, Any]]:
    """Every (model, z) of the grid, trained, resumed or loaded; and each one's training record."""
    grid = [(kind, z) for z in cfg.latents for kind in cfg.models]
    runs = [(cfg.run_config(k, z), run_dir_for(out, cfg.run_config(k, z))) for k, z in grid]
    reused = [is_finished(run_dir, run_cfg) for run_cfg, run_dir in runs]
    for i, ((kind, z), (_, run_dir), r) in enumerate(zip(grid, runs, reused, strict=True), 1):
        if r:
            console.print(f"[{i}/{len(grid)}] {kind.upper()} z={z}: reusing {run_dir.name}")
    train_units(runs, mnist, out, device, console, parallel)
    models: Models = {}
    records: dict[str, Any] = {}
    for (kind, z), (_, run_dir), r in zip(grid, runs, reused, strict=True):
        models[(kind, z)], _ = checkpoint.load_model(run_dir, "cpu")
        records[f"{kind}-z{z}"] = _training_record(run_dir, kind, z, r)
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


def run_experiments(
    cfg: StudyConfig,
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    out: Path,
    key: str,
    console: Console,
    timings: dict[str, Any] | None = None,
    skipped: dict[str, str] | None = None,
) -> list[ExperimentResult]:
    """Run the experiments, or reuse the last run's results where nothing changed.

    `key` names everything the experiments depend on (settings, models, the judge); the
    cache keeps only the latest result of each experiment, whose figures are the ones on disk.
    """
    e = cfg.experiments
    steps = [
        ("reconstruction", lambda: reconstruction.run(models, data, e, out, judge)),
        ("interpolation", lambda: interpolation.run(models, data, e, out, judge)),
        ("latent", lambda: latent.run(models, data, e, out)),
        ("clustering", lambda: clustering.run(models, data, e, out)),
        ("style", lambda: style.run(models, data, e, out, judge)),
    ]
    if "latent" in (skipped or {}):  # too few test images per digit: it would fail
        steps[2] = ("latent", lambda: ExperimentResult("latent", {}))
    cache = _read_cache(out / EXPERIMENT_CACHE)
    results = []
    timings = {} if timings is None else timings
    for i, (name, step) in enumerate(steps, start=1):
        t = time.perf_counter()
        cached = cache.get(name)
        if cached and cached.get("key") == key and _intact(out, cached):
            result = ExperimentResult(
                name, cached["numbers"], [Figure(**f) for f in cached["figures"]], cached["seconds"]
            )
            console.print(f"experiment {i}/{len(steps)}: {name}: reusing the last results")
            note = f"reused (computed before in {result.seconds:.1f} s)"
        else:
            with console.status(f"experiment {i}/{len(steps)}: {name}"):
                started = time.perf_counter()
                result = step()
                result.seconds = time.perf_counter() - started
            console.print(f"experiment {i}/{len(steps)}: {name} done in {result.seconds:.1f} s")
            cache[name] = _sealed(out, {"key": key, **_result_dict(result)})
            fileio.write_json(out / EXPERIMENT_CACHE, cache)
            note = "computed"
        timings[f"experiment: {name}"] = _step(time.perf_counter() - t, note)
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


def _sealed(out: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """A cache entry with the sha256 of its figures and of itself, so damage is seen."""
    entry = {
        **entry,
        "figure_sha256": {f["path"]: _file_sha256(out / f["path"]) for f in entry["figures"]},
    }
    return {**entry, "sha256": _entry_sha256(entry)}


def _intact(out: Path, entry: dict[str, Any]) -> bool:
    """True if the entry and every figure it names are as they were written."""
    try:
        if entry["sha256"] != _entry_sha256({k: v for k, v in entry.items() if k != "sha256"}):
            return False
        return all(
            _file_sha256(out / path) == digest for path, digest in entry["figure_sha256"].items()
        ) and {f["path"] for f in entry["figures"]} == set(entry["figure_sha256"])
    except (KeyError, TypeError, AttributeError, OSError):
        return False


def _entry_sha256(entry: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def experiment_key(cfg: StudyConfig, out: Path, judge_folder: str) -> str:
    runs = sorted(
        run_dir_for(out, cfg.run_config(k, z)).name for k in cfg.models for z in cfg.latents
    )
    blob = {
        "experiments": to_dict(cfg.experiments),
        "data": data_key(cfg),
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
    console.print(f"study {cfg.name!r}: {len(cfg.models) * len(cfg.latents)} models into {out}")
    for line in start_lines(torch_device, mnist, len(data.y_test)):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    t = time.perf_counter()
    models, training = train_grid(cfg, mnist, out, torch_device, console, parallel)
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
    key = experiment_key(cfg, out, judge_folder)
    experiments = run_experiments(cfg, models, data, judge, out, key, console, timings, skipped)
    results = assemble(cfg, mnist, data, training, experiments, {"steps": timings})
    results[NOT_MEASURED] = skipped
    results["timings"]["total"] = time.perf_counter() - started
    from vaelab.explorer import EXPLORER_FILE, write_explorer
    from vaelab.report import write_report

    fileio.write_json(out / RESULTS_FILE, results)
    steps = cfg.experiments.walk_steps
    write_explorer(models, data, judge, out / EXPLORER_FILE, title=cfg.name, walk_steps=steps)
    report = write_report(results, experiments, out / REPORT_FILE)
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


def assemble(
    cfg: StudyConfig,
    mnist: MNIST,
    data: StudyData,
    training: dict[str, Any],
    experiments: list[ExperimentResult],
    timings: dict[str, Any],
) -> dict[str, Any]:
    """results.json: the settings, the data, every number of every experiment, the verdicts."""
    numbers = {r.name: r.numbers for r in experiments}
    return {
        "config": to_dict(cfg),
        "data": {
            "source": mnist.source,
            "path": cfg.data.path,
            "sha256": mnist.sha256,
            "train_images": len(data.x_train),
            "test_images": len(data.x_test),
            "test_images_of": len(mnist.y_test),
            "labelled_images": min(cfg.data.n_labelled, len(data.x_train)),
        },
        "images_per_measure": images_per_measure(cfg, len(data.x_test)),
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


def images_per_measure(cfg: StudyConfig, n_test: int) -> dict[str, Any]:
    """How many test images each measure of results.json is computed on."""
    e = cfg.experiments
    bounds = n_test if e.iwae_images is None else min(e.iwae_images, n_test)
    return {
        "reconstruction": {
            "nll": n_test,
            "mse": n_test,
            "read_as_true_digit": n_test,
            "fours_read_as_nine": "the test 4s among them",
            "read_as_given_label": n_test,
            "kl": n_test,
            "elbo": n_test,
            "kl_on_iwae_images": bounds,
            "elbo_on_iwae_images": bounds,
            "iwae": bounds,
        },
        "interpolation": "two test images per walk",
        "latent": n_test,
        "clustering": n_test,
        "training": "test_loss: every test image of the subset",
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
    claims = Table(title="Claims, judged on this run")
    claims.add_column("#", no_wrap=True)
    claims.add_column("the article's claim", overflow="fold")
    claims.add_column("comparisons", overflow="fold")
    claims.add_column("verdict", no_wrap=True, min_width=len("does not hold"))
    for claim in results["claims"]:
        statuses = [c["status"] for c in claim.get("comparisons", [])]
        verbs = {"agrees": "agree", "disagrees": "disagree", "unsettled": "unsettled"}
        counts = ", ".join(f"{statuses.count(s)} {verbs[s]}" for s in dict.fromkeys(statuses))
        claims.add_row(str(claim["number"]), claim["text"], counts or "-", claim["verdict"])
    console.print(claims)
    if results["claims"] and results["claims"][0].get("provisional"):
        console.print("provisional: one seed; every verdict may change with another seed")
    console.print(f"total time: {results['timings']['total']:.0f} s")
