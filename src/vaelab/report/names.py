"""One name per model and mode on the page, one arrow, and each unit explained once."""

from __future__ import annotations

import re

from vaelab.models import kinds

ARROW = "→"
AE_LOSSES = {"mse": "the article's MSE", "bernoulli": "the Bernoulli NLL"}

UNITS = {
    "nats": "nats per image: a test image's negative log-likelihood under its reconstruction "
    "(lower is sharper); 1 nat is a factor e in likelihood",
    "share": "share of images: a fraction of the test images, 0 to 1 (0.02 is 2 in 100)",
    "probability": "the digit classifier's probability of a label, 0 to 1",
    "digits": "digits passed: other digits the classifier reads strictly inside a walk",
    "cloud radii": "a distance in units of the latent cloud's own RMS radius about its centre",
    "accuracy": "share of test images that 10 nearest neighbours among the codes name right",
    "V-measure": "how well k-means clusters match the true digits, 0 (not at all) to 1 "
    "(exactly); equal to NMI",
}


def model_name(key: str) -> str:
    """ "cvae (no label)" -> "CVAE (no label)", "conv-ae" -> "conv AE" (the kind's title);
    other names as they are."""
    return kinds.title_of(key) or key


def ae_loss_name(loss: str | None) -> str:
    """ "mse" -> "the article's MSE"."""
    return AE_LOSSES.get(loss or "", loss or "")


def arrows(text: str) -> str:
    """Every "->" (and "1to0" walk key) written with the one arrow the page uses."""
    text = re.sub(r"\s*->\s*", f" {ARROW} ", text)
    return re.sub(r"^(\d+)to(\d+)$", rf"\1 {ARROW} \2", text)


def walk_name(key: str) -> str:
    """ "1to0" -> "1 → 0"."""
    return arrows(key)


def units_used(claims: list[dict]) -> dict[str, str]:
    """The units the claims measure in, each with its one-line explanation, in first use."""
    found = dict.fromkeys(c["unit"] for claim in claims for c in claim["comparisons"])
    return {unit: UNITS.get(unit, unit) for unit in found if unit}
