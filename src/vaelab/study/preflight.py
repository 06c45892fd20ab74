"""A study's checks before any work: everything that would fail later fails now, in one line.

`StudyConfig.validate` checks each setting by itself; `preflight` checks what depends on the
data (which digits the seeded test subset holds, how many images it has) and decides which
experiments have no inputs in this grid. Those are not errors: the experiment is skipped and
results.json says why under "not_measured".
"""

from __future__ import annotations

import numpy as np

from vaelab.core.config import StudyConfig
from vaelab.core.errors import VaelabError
from vaelab.data.mnist import MNIST
from vaelab.data.splits import test_subset
from vaelab.models import kinds

NOT_MEASURED = "not_measured"
MIN_PER_DIGIT_FOR_KNN = 5  # the latent experiment's 5-fold cross-validated kNN


def preflight(cfg: StudyConfig, mnist: MNIST) -> dict[str, str]:
    """Raise VaelabError for a study that cannot run; else {experiment: why it is skipped}."""
    cfg.validate()
    labels = mnist.y_test[test_subset(mnist.y_test, cfg.data.test_size, cfg.data.seed)]
    _check_digits(cfg, labels)
    if not cfg.label_counts:  # the data as loaded may hold fewer images than MNIST's
        for kind in cfg.models:
            kinds.check_labels(kind, cfg.data, cfg.data.train_images(len(mnist.y_train)))
    e = cfg.experiments
    if e.kmeans_clusters > len(labels):
        raise VaelabError(
            f"experiments.kmeans_clusters = {e.kmeans_clusters} is more than the "
            f"{len(labels)} test images; raise data.test_size or lower kmeans_clusters"
        )
    return skipped_experiments(cfg, labels)


def _check_digits(cfg: StudyConfig, labels: np.ndarray) -> None:
    present = set(np.unique(labels).tolist())
    e = cfg.experiments
    needs = [(d, "experiments.recon_digits") for d in e.recon_digits]
    needs += [(d, "experiments.walks") for pair in e.walks for d in pair]
    for digit, setting in needs:
        if digit not in present:
            raise VaelabError(
                f"the {len(labels)} test images (data.test_size) hold no {digit}, which "
                f"{setting} needs; use a larger data.test_size or another digit"
            )


def skipped_experiments(cfg: StudyConfig, labels: np.ndarray) -> dict[str, str]:
    """The experiments this grid gives no inputs to, with the reason in words."""
    e, latents = cfg.experiments, set(cfg.latents)
    skipped = {}
    if not latents & set(e.recon_latents):
        skipped["reconstruction grids"] = (
            f"no model has a latent size in experiments.recon_latents {list(e.recon_latents)}"
        )
    roles = {kinds.record(kind).role for kind in cfg.models}  # a conv VAE walks as the VAE
    if "vae" not in roles or not latents & set(e.recon_latents):
        skipped["interpolation"] = "needs a VAE with a latent size in experiments.recon_latents"
    counts = np.bincount(labels, minlength=10)
    if e.plot_latent not in latents:
        skipped["latent"] = f"no model has experiments.plot_latent = {e.plot_latent}"
    elif counts.max() < MIN_PER_DIGIT_FOR_KNN or (counts > 0).sum() < 2:
        skipped["latent"] = "too few test images per digit for its 5-fold kNN accuracy"
    if not latents & set(e.recon_latents):
        skipped["clustering"] = (
            f"no model has a latent size in experiments.recon_latents {list(e.recon_latents)}"
        )
    return skipped
