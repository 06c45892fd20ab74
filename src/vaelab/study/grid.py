"""The study's grid: its run folders per seed, training them, the data and the digit judge.

A study folder holds one run folder per model and seed, named by the model and a hash of
every setting that changes its numbers (the run seed and the data's content among them,
`training.identity.run_name`): running the study again finds finished models and resumes
unfinished ones, a changed setting leads to new folders for the models it touches, and a seed
added to `seeds` trains only its own models.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from vaelab.core.config import RunConfig, StudyConfig, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import StudyFolder
from vaelab.core.lock import folder_lock
from vaelab.core.util import json_digest
from vaelab.data.mnist import MNIST
from vaelab.data.splits import pixels, test_subset, to_float
from vaelab.execution.parallel import ParallelOptions, train_units
from vaelab.experiments.common import Models, StudyData
from vaelab.models import kinds
from vaelab.models.classifier import PARAMS_FILE, DigitClassifier
from vaelab.report.tboard import write_scalars
from vaelab.study.results import training_record
from vaelab.training import checkpoint
from vaelab.training.identity import is_finished, run_name

RunDirs = dict[tuple[str, int], Path]  # (kind, latent) -> run folder, for one seed


def run_dir_for(out: Path, cfg: RunConfig) -> Path:
    """models/<kind>-z<latent>-s<seed>-<hash of the settings that change the numbers>."""
    return StudyFolder(out).run(run_name(cfg)).path


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


Point = tuple[float, int]  # (C, k): the article's KL weight and samples of z


def point_runs(cfg: StudyConfig, out: Path) -> dict[Point, dict[int, RunDirs]]:
    """Every run folder of every (C, k) point: {point: {seed: {(kind, latent): folder}}}.
    The AE, which has neither C nor k, has one folder per latent and seed, shared by all."""
    return {point: grid_runs(cfg.at(point), out) for point in cfg.points()}


def ae_variant_runs(cfg: StudyConfig, out: Path) -> dict[str, dict[int, RunDirs]]:
    """The AE trained with each loss of `ae_losses` but the headline's:
    {loss: {seed: {("ae", latent): folder}}} (none without ae_losses)."""
    return {
        loss: {
            seed: {
                ("ae", z): run_dir_for(out, cfg.run_config("ae", z, seed, ae_loss=loss))
                for z in cfg.latents
            }
            for seed in cfg.seeds
        }
        for loss in cfg.ae_loss_variants()[1:]
    }


def variant_models(cfg: StudyConfig, out: Path) -> dict[str, dict[int, Models]]:
    """The finished AEs of `ae_variant_runs`: {loss: {seed: {("ae", latent): model}}}."""
    return {
        loss: {
            seed: {key: checkpoint.load_model(d, "cpu")[0] for key, d in runs.items()}
            for seed, runs in by_seed.items()
        }
        for loss, by_seed in ae_variant_runs(cfg, out).items()
    }


def point_label(point: Point) -> str:
    return f"C={point[0]:g}, k={point[1]}"


def train_grid(
    cfg: StudyConfig,
    mnist: MNIST,
    out: Path,
    device: torch.device,
    console: Console,
    parallel: ParallelOptions | None = None,
) -> tuple[dict[Point, dict[int, Models]], dict[Point, dict[int, RunDirs]], dict[str, Any]]:
    """Every run of every point and seed trained, resumed or reused; the models and folders
    per point and seed, and each run's training record (the headline point's keyed
    `<kind>-z<latent>-seed<seed>`, the others' with `-C<C>-k<k>` after it)."""
    folders = point_runs(cfg, out)
    runs: dict[Path, RunConfig] = {}
    for point, by_seed in folders.items():
        at = cfg.at(point)
        for seed, by_key in by_seed.items():
            for (kind, z), run_dir in by_key.items():
                runs.setdefault(run_dir, at.run_config(kind, z, seed))
    variants = ae_variant_runs(cfg, out)
    for loss, by_seed in variants.items():  # the AE trained the other way: runs of its own
        for seed, by_key in by_seed.items():
            for (_, z), run_dir in by_key.items():
                runs.setdefault(run_dir, cfg.run_config("ae", z, seed, ae_loss=loss))
    reused = {}
    for i, (run_dir, run_cfg) in enumerate(runs.items(), start=1):
        # a folder another study is training: wait for it, then reuse what it finished
        with folder_lock(run_dir, wait=True, on_wait=console.print):
            reused[run_dir] = is_finished(run_dir, run_cfg)
        if reused[run_dir]:
            m, title = run_cfg.model, kinds.record(run_cfg.model.kind).title
            console.print(
                f"[{i}/{len(runs)}] {title} z={m.latent} seed {run_cfg.train.seed}: "
                f"reusing {run_dir.name}"
            )
    pairs = [(c, d) for d, c in runs.items()]
    train_units(pairs, mnist, out, device, console, parallel)
    if parallel is not None and parallel.tensorboard:
        write_scalars(StudyFolder(out).tensorboard, list(runs))
    loaded = {d: checkpoint.load_model(d, "cpu")[0] for d in runs}
    models: dict[Point, dict[int, Models]] = {}
    records: dict[str, Any] = {}
    headline = cfg.headline()
    for point, by_seed in folders.items():
        at = cfg.at(point)
        suffix = "" if point == headline else f"-C{point[0]:g}-k{point[1]}"
        for seed, by_key in by_seed.items():
            for (kind, z), run_dir in by_key.items():
                models.setdefault(point, {}).setdefault(seed, {})[(kind, z)] = loaded[run_dir]
                weighs_kl = kinds.record(kind).variational  # an AE has neither C nor k
                if not weighs_kl and suffix:
                    continue  # one folder at every point: the headline's record
                per = at.train.steps_per_epoch(train_images(cfg, mnist))
                record = training_record(run_dir, kind, z, seed, reused[run_dir], per)
                if weighs_kl and len(folders) > 1:  # which (C, k) of the sweep
                    record["point"] = list(point)
                if kind == "ae" and variants:  # which loss, beside the AE trained otherwise
                    record["ae_loss"] = cfg.train.ae_loss
                records[f"{kind}-z{z}-seed{seed}{suffix}"] = record
    per = cfg.train.steps_per_epoch(train_images(cfg, mnist))
    for loss, by_seed in variants.items():
        for seed, by_key in by_seed.items():
            for (_, z), run_dir in by_key.items():
                record = training_record(run_dir, "ae", z, seed, reused[run_dir], per)
                records[f"ae-z{z}-seed{seed}-{loss}"] = record | {"ae_loss": loss, "variant": True}
    return models, folders, records


def train_images(cfg: StudyConfig, mnist: MNIST) -> int:
    """How many training images the study's runs train on."""
    return cfg.data.train_images(len(mnist.y_train))


def study_data(cfg: StudyConfig, mnist: MNIST, images: str = "test") -> StudyData:
    """The images the experiments measure (the same for every seed) and the training images
    with true labels. `images="train"`: a seeded subset of data.test_size training images in
    place of the test subset, as the article's notebook measured (`train_subset`)."""
    data = _study_data(cfg, mnist)
    if images == "test":
        return data
    chosen = torch.from_numpy(train_subset(len(data.y_train), cfg.data.test_size, cfg.data.seed))
    return StudyData(data.x_train[chosen], data.y_train[chosen], data.x_train, data.y_train)


TRAIN_SUBSET_STREAM = 1  # the training-image subset's seed stream, apart from the test one's


def train_subset(n_train: int, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed, seeded subset of `n` of the `n_train` training images."""
    if n is None or n >= n_train:
        return np.arange(n_train)
    rng = np.random.default_rng([seed, TRAIN_SUBSET_STREAM])
    return np.sort(rng.choice(n_train, size=n, replace=False))


def _study_data(cfg: StudyConfig, mnist: MNIST) -> StudyData:
    d = cfg.data
    n = len(mnist.y_train) if d.train_size is None else min(d.train_size, len(mnist.y_train))
    test = test_subset(mnist.y_test, d.test_size, d.seed)
    binary = "none" if d.binarize == "none" else "static"  # the experiments: one fixed draw
    return StudyData(
        x_test=torch.from_numpy(to_float(pixels(mnist.x_test[test], binary, d.seed, "test"))),
        y_test=torch.from_numpy(mnist.y_test[test].astype(np.int64)),
        x_train=torch.from_numpy(to_float(pixels(mnist.x_train[:n], binary, d.seed, "train"))),
        y_train=torch.from_numpy(mnist.y_train[:n].astype(np.int64)),
        test_index=test,
    )


def data_key(cfg: StudyConfig) -> dict[str, Any]:
    """The data settings that change numbers: content fingerprint and splits, not the path."""
    return {k: v for k, v in to_dict(cfg.data).items() if k not in ("path", "source")}


def judge_folder(cfg: StudyConfig, out: Path) -> Path:
    judge = DigitClassifier(epochs=cfg.experiments.classifier_epochs, seed=cfg.experiments.seed)
    key = {"params": judge.get_params(), "data": data_key(cfg)}
    return StudyFolder(out).classifiers / json_digest(key, 10)


def digit_judge(cfg: StudyConfig, data: StudyData, out: Path) -> tuple[DigitClassifier, str, bool]:
    """The classifier that reads reconstructions and walks, trained once per study folder:
    it, its folder's name and whether it was reused."""
    folder = judge_folder(cfg, out)
    if (folder / PARAMS_FILE).exists():
        return DigitClassifier.load(folder), folder.name, True
    judge = DigitClassifier(epochs=cfg.experiments.classifier_epochs, seed=cfg.experiments.seed)
    judge.fit(data.x_train, data.y_train)
    judge.save(folder)
    return judge, folder.name, False


def with_fingerprint(cfg: StudyConfig, mnist: MNIST) -> StudyConfig:
    """`cfg` with the data's content fingerprint and source; a pinned other fingerprint fails."""
    if cfg.data.sha256 and cfg.data.sha256 != mnist.sha256:
        raise VaelabError(
            f"data.sha256 is {cfg.data.sha256[:12]}..., but {mnist.source} has "
            f"{mnist.sha256[:12]}...: other data than the settings ask for"
        )
    data = dataclasses.replace(cfg.data, sha256=mnist.sha256, source=mnist.source)
    return dataclasses.replace(cfg, data=data)
