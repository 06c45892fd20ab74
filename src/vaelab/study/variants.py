"""The claims judged again on other numbers: on training images, with the AE trained the
other way, and on each other family of models (a convolutional AE, VAE and CVAE).

The headline verdicts come from the first of `eval_images` and the AE trained on
`train.ae_loss`. The article's notebook measured on 2,000 of its *training* images and
trained its AE on a mean squared error; a study that names "train" beside "test", or a second
AE loss in `ae_losses`, judges every claim again on those numbers:

- on the other images, every experiment the claims read runs again on every seed's models
  (`per_seed.experiment_numbers`: no figures, nothing no claim reads);
- with the other AE, only its own experiments run (on a Models dict holding that AE alone),
  and every subtree under the key "ae" of the headline numbers is replaced by its numbers
  (`replace_model`): the VAE and CVAE experiments are never run twice.

- on another family, every experiment the claims read runs again on its models, named as
  the article's models whose role each plays (`family_models`): the rules read a conv-VAE as
  they read the VAE.

Each second set of verdicts is compared with the headline's: which comparisons changed
outcome, which claims changed verdict, and the largest change of an effect. Every seed's
numbers are cached in the study folder under the hashes of what they depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vaelab.claims.verdicts import judge_claims
from vaelab.core import fileio
from vaelab.core.config import StudyConfig
from vaelab.core.folders import StudyFolder
from vaelab.core.util import code_digest, json_digest
from vaelab.data.mnist import MNIST
from vaelab.evaluation.evidence import across_seeds
from vaelab.experiments.common import Models, StudyData
from vaelab.models import kinds
from vaelab.study.context import StudyContext
from vaelab.study.grid import RunDirs, ae_variant_runs, data_key, study_data, variant_models
from vaelab.study.per_seed import CLAIMED, experiment_key, experiment_numbers

AE_EXPERIMENTS = ("reconstruction", "latent", "clustering")  # those with an "ae" subtree
NumbersOf = Callable[[Models, tuple[str, ...]], dict[str, Any]]


IMAGES = {
    "test": "a seeded subset of {n} of the {total} test images, held out from training",
    "train": "a seeded subset of {n} of the {total} training images, as the article's "
    "notebook measured (the models and the digit classifier trained on them)",
}


def images_text(cfg: StudyConfig, mnist: MNIST, images: str) -> str:
    total = len(mnist.y_test) if images == "test" else len(mnist.y_train[: cfg.data.train_size])
    n = total if cfg.data.test_size is None else min(cfg.data.test_size, total)
    return IMAGES[images].format(n=n, total=total)


def judge_again(
    ctx: StudyContext,
    models: Mapping[int, Models],
    folders: Mapping[int, RunDirs],
    results: dict[str, Any],
) -> str:
    """Put into `results` the claims on the other images of `eval_images`, with the AE of
    every other loss of `ae_losses` and on every other family of models, each set beside the
    headline's with what it changes; returns a line saying how many seeds' numbers were
    computed now."""
    cfg, mnist, out, log = ctx.cfg, ctx.mnist, ctx.out, ctx.log
    judge_name = ctx.judge_name
    headline = cfg.eval_images[0]
    results["evaluation"] = {
        "headline": headline,
        "sets": {headline: {"images": images_text(cfg, mnist, headline), "claims": "claims"}},
    }
    computed = 0
    for images in cfg.eval_images[1:]:
        data = study_data(cfg, mnist, images)
        entries = {
            seed: (_key(cfg, folders[seed], judge_name, images), headline_models(cfg, models[seed]))
            for seed in cfg.seeds
        }
        numbers, n = cached_numbers(
            out, entries, _numbers_of(data, ctx), CLAIMED, log, f"on {images}"
        )
        computed += n
        claims = judged(numbers)
        results["evaluation"]["sets"][images] = {
            "images": images_text(cfg, mnist, images),
            "claims": claims,
            "changes": changes(results["claims"], claims),
            "experiments": across_seeds([numbers[s] for s in cfg.seeds]),
        }
    computed += _other_ae_losses(ctx, results)
    computed += _other_families(ctx, models, folders, results)
    return f"{computed} (set, seed) numbers computed, the rest reused"


def families(cfg: StudyConfig) -> tuple[str, ...]:
    """The model families of the study, the headline's first: the article's own ("mlp") when
    the study lists it, else the family of its first model."""
    found = tuple(dict.fromkeys(kinds.record(k).family for k in cfg.models))
    first = "mlp" if "mlp" in found else found[0]
    return (first, *(f for f in found if f != first))


def family_models(models: Models, family: str) -> Models:
    """The models of one family under the names of the article's models they play ("ae",
    "vae", "cvae", "m2"), so that every experiment and rule reads them as it reads those."""
    found: Models = {}
    for (kind, z), model in models.items():
        record = kinds.record(kind)
        if record.family == family:
            found[(record.role, z)] = model
    return found


def headline_models(cfg: StudyConfig, models: Models) -> Models:
    """The models the headline verdicts read, named as the article's models they play: the
    article's own where the study lists them (as they are), else its first family's."""
    return family_models(models, families(cfg)[0])


def _other_families(
    ctx: StudyContext,
    models: Mapping[int, Models],
    folders: Mapping[int, RunDirs],
    results: dict[str, Any],
) -> int:
    """Every claim judged on each other family's models (a convolutional AE, VAE and CVAE
    read as the article's three), beside the headline's; a study without the article's
    family has its first family's verdicts as the headline."""
    cfg = ctx.cfg
    found = families(cfg)
    if found == ("mlp",):
        return 0
    numbers_of = _numbers_of(ctx.data, ctx)
    results["families"] = {"headline": found[0], "sets": {}}
    computed = 0
    for family in found:
        if family == "mlp":
            results["families"]["sets"][family] = {"claims": "claims"}
            continue
        entries = {}
        for seed in cfg.seeds:
            runs = {k: d for k, d in folders[seed].items() if kinds.record(k[0]).family == family}
            key = _key(cfg, runs, ctx.judge_name, cfg.eval_images[0]) | {"family": family}
            entries[seed] = (key, family_models(models[seed], family))
        numbers, n = cached_numbers(ctx.out, entries, numbers_of, CLAIMED, ctx.log, family)
        computed += n
        claims = judged(numbers)
        entry = {"claims": claims, "experiments": across_seeds([numbers[s] for s in cfg.seeds])}
        if family == found[0]:  # no article's family: these are the study's verdicts
            results["claims"] = claims
        else:
            entry["changes"] = changes(results["claims"], claims)
        results["families"]["sets"][family] = entry
    return computed


def _other_ae_losses(ctx: StudyContext, results: dict[str, Any]) -> int:
    cfg, out, judge_name = ctx.cfg, ctx.out, ctx.judge_name
    losses = cfg.ae_loss_variants()
    if len(losses) < 2:
        return 0
    headline = {int(s): n for s, n in results["per_seed"].items()}
    results["ae_losses"] = {"headline": losses[0], "sets": {losses[0]: {"claims": "claims"}}}
    computed = 0
    for loss, by_seed in variant_models(cfg, out).items():
        entries = {
            seed: (_key(cfg, _ae_dirs(cfg, out, loss, seed), judge_name, cfg.eval_images[0]), m)
            for seed, m in by_seed.items()
        }
        numbers, n = cached_numbers(
            out, entries, _numbers_of(ctx.data, ctx), AE_EXPERIMENTS, ctx.log, loss
        )
        computed += n
        claims = judged({s: replace_model(headline[s], numbers[s]) for s in cfg.seeds})
        results["ae_losses"]["sets"][loss] = {
            "claims": claims,
            "changes": changes(results["claims"], claims),
            "experiments": across_seeds([numbers[s] for s in cfg.seeds]),
        }
    return computed


def _ae_dirs(cfg: StudyConfig, out: Path, loss: str, seed: int) -> RunDirs:
    return ae_variant_runs(cfg, out)[loss][seed]


def _key(cfg: StudyConfig, runs: RunDirs, judge_name: str, images: str) -> dict[str, Any]:
    names = [d.name for d in runs.values()]
    return {"experiments": experiment_key(cfg, names, judge_name, data_key(cfg)), "images": images}


def _numbers_of(data: StudyData, ctx: StudyContext) -> NumbersOf:
    """One seed's numbers of some experiments on `data` (images other than the headline's,
    or the headline's)."""

    def numbers_of(models: Models, names: tuple[str, ...]) -> dict[str, Any]:
        e = ctx.cfg.experiments
        return experiment_numbers(models, data, e, ctx.judge, ctx.skipped, names)

    return numbers_of


def replace_model(numbers: Any, other: Any, kind: str = "ae") -> Any:
    """`numbers` with the value of every key `kind` taken from the same path in `other`
    (where `other` has that path; elsewhere `numbers` is kept as it is)."""
    if not isinstance(numbers, dict):
        return numbers
    found = {}
    for key, value in numbers.items():
        theirs = other.get(key) if isinstance(other, dict) else None
        if key == kind and isinstance(other, dict) and key in other:
            found[key] = theirs
        else:
            found[key] = replace_model(value, theirs, kind)
    return found


def cached_numbers(
    out: Path,
    entries: Mapping[int, tuple[dict[str, Any], Models]],
    numbers_of: NumbersOf,
    names: tuple[str, ...],
    log: Callable[[str], None],
    label: str,
) -> tuple[dict[int, dict[str, Any]], int]:
    """Each seed's numbers of `names` on its models, from the cache where the entry's key
    (what they depend on) was computed before; and how many were computed now."""
    path = StudyFolder(out).variant_cache
    cache = fileio.read_json_object(path)
    code = code_digest(__name__, "vaelab.study.per_seed")
    found, computed = {}, 0
    for seed, (key, models) in entries.items():
        entry = json_digest({"key": key, "names": list(names), "code": code})
        if entry not in cache:
            log(f"claims {label}, seed {seed}: computing")
            cache[entry] = numbers_of(models, names)
            fileio.write_json(path, cache)
            computed += 1
        found[seed] = cache[entry]
    return found, computed


def judged(per_seed: Mapping[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every claim's verdict over the seeds of `per_seed`, as results.json holds them."""
    seeds = list(per_seed)
    return [c.to_dict() for c in judge_claims([per_seed[s] for s in seeds], seeds)]


def changes(headline: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, Any]:
    """What the second set of verdicts changes: the claims whose verdict differs, the
    comparisons whose outcome differs, and the largest change of an effect (in widths of the
    headline's interval, so that effects in different units compare)."""
    theirs = {c["number"]: c for c in other}
    verdicts, outcomes, largest = [], [], None
    for claim in headline:
        mine, alt = claim, theirs.get(claim["number"])
        if alt is None:
            continue
        if mine["verdict"] != alt["verdict"]:
            verdicts.append(
                {"claim": mine["number"], "from": mine["verdict"], "to": alt["verdict"]}
            )
        by_name = {c["name"]: c for c in alt["comparisons"]}
        for c in mine["comparisons"]:
            d = by_name.get(c["name"])
            if d is None:
                continue
            if c["outcome"] != d["outcome"]:
                outcomes.append(
                    {
                        "claim": mine["number"],
                        "comparison": c["name"],
                        "from": c["outcome"],
                        "to": d["outcome"],
                    }
                )
            width = max(c["interval"][1] - c["interval"][0], 1e-12)
            moved = {
                "claim": mine["number"],
                "comparison": c["name"],
                "from": c["effect"],
                "to": d["effect"],
                "unit": c["unit"],
                "change": d["effect"] - c["effect"],
                "in_interval_widths": abs(d["effect"] - c["effect"]) / width,
            }
            if largest is None or moved["in_interval_widths"] > largest["in_interval_widths"]:
                largest = moved
    return {
        "verdicts": verdicts,
        "outcomes": outcomes,
        "largest_effect_change": largest,
        "summary": _summary(verdicts, outcomes, largest),
    }


def _summary(
    verdicts: list[dict[str, Any]], outcomes: list[dict[str, Any]], largest: dict[str, Any] | None
) -> str:
    """One sentence for the report."""
    if not verdicts and not outcomes:
        head = "No verdict and no comparison's outcome changes"
    else:
        moved = ", ".join(f"claim {v['claim']} {v['from']} → {v['to']}" for v in verdicts)
        head = (
            f"{len(verdicts)} verdict{'s' * (len(verdicts) != 1)} change"
            f"{'s' * (len(verdicts) == 1)}{f' ({moved})' if moved else ''} and "
            f"{len(outcomes)} comparison outcome{'s' * (len(outcomes) != 1)}"
        )
    if largest is None:
        return head + "."
    return (
        f"{head}; the largest change of an effect: {largest['comparison']} (claim "
        f"{largest['claim']}), {largest['from']:+.3g} → {largest['to']:+.3g} {largest['unit']} "
        f"({largest['in_interval_widths']:.2g} interval widths)."
    )
