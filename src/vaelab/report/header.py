"""The page's first lines: what was run, and how far to trust it, from results.json alone."""

from __future__ import annotations

from typing import Any

from vaelab.core.config import ARTICLE_STEPS
from vaelab.report.numbers import sig

CONVERGED = "vaelab study --preset converged"
SHORT_CLAIMS = {
    1: "Larger z reconstructs more sharply",
    2: "VAE and CVAE reconstruct more cleanly than the AE",
    3: "The CVAE is best with the true label; a wrong label pulls it over",
    4: "At smaller z a walk passes more other digits",
    5: "AE codes sit off the origin; VAE and CVAE codes centre on it",
    6: "At z=2 the AE separates the digits best",
    7: "k-means: the AE best at z=4, the VAE and CVAE at z=16 and 64",
    8: "The CVAE clusters better than the VAE",
}


def short_claim(claim: dict[str, Any]) -> str:
    """The claim in a few words, for the verdict matrix."""
    return SHORT_CLAIMS.get(claim["number"]) or claim["text"].split(";")[0].split(" (")[0]


def what_ran(results: dict[str, Any]) -> str:
    """ "12 models (and the AE trained both ways) × 10 seeds, 1000 steps of 100 images (1.67
    epochs), Chainer's Adam, evaluated on 2000 held-out test images"."""
    cfg = results["config"]
    models = len(cfg.get("models") or []) * len(cfg.get("latents") or [])
    both = len((results.get("ae_losses") or {}).get("sets") or {}) > 1
    seeds = len(results.get("seeds") or [])
    parts = [
        f"{models} models{' (and the AE trained both ways)' if both else ''} × {seeds} "
        f"seed{'s' * (seeds != 1)}"
    ]
    length = results.get("training_length") or {}
    if length.get("steps"):
        epochs = length["steps"] / length["steps_per_epoch"]
        batch = cfg["train"]["batch_size"]
        word = "epoch" if sig(epochs) == "1" else "epochs"
        parts.append(f"{length['steps']} steps of {batch} images ({sig(epochs)} {word})")
    parts.append("Chainer's Adam" if cfg["train"].get("optimizer") == "chainer-adam" else "Adam")
    parts.append(f"evaluated on {_images(results)}")
    return ", ".join(parts)


def _images(results: dict[str, Any]) -> str:
    evaluation = results.get("evaluation") or {}
    data = results["data"]
    n = data["test_images"]
    if evaluation.get("headline") == "train":
        return f"{n} training images"
    return f"{n} held-out test images" if n < data["test_images_of"] else f"all {n} test images"


def how_far(results: dict[str, Any]) -> str:
    """Provisional, too few seeds, still improving, the intervals' level: one short run."""
    claims = results.get("claims") or []
    said = []
    if any(c.get("provisional") for c in claims):
        said.append("Provisional: one seed measured, so no interval holds its level")
    else:
        said.append("Intervals hold jointly at 95% per claim")
    few = sum(c.get("verdict") == "too few seeds" for c in claims)
    if few and not any(c.get("provisional") for c in claims):
        said.append(f"{few} claim{'s' * (few != 1)} with too few seeds to decide")
    said.append(_improving(results))
    return ". ".join(s for s in said if s) + "."


def _improving(results: dict[str, Any]) -> str:
    judged = [
        t["still_improving"]
        for t in results.get("training", {}).values()
        if t.get("still_improving") is not None
    ]
    if not judged:
        return ""
    steps = (results.get("training_length") or {}).get("steps")
    short = ": this is the article's short training" if steps == ARTICLE_STEPS else ""
    if all(judged):
        return f"Every model still improving{short}"
    if any(judged):
        return f"{sum(judged)} of {len(judged)} runs still improving{short}"
    return "Every model levelled off"


def next_run(results: dict[str, Any]) -> dict[str, str] | None:
    """Where the fuller answer is: the table at convergence, or the command that makes it."""
    regimes = results.get("regimes") or {}
    if regimes.get("available"):
        return {"text": "The verdicts at convergence:", "link": "#regime", "code": ""}
    improving = "still improving" in _improving(results)
    if regimes or improving:
        out = regimes.get("converged_study")
        code = CONVERGED + (f" --out {out}" if out else "")
        return {"text": "For the converged models:", "link": "", "code": code}
    return None
