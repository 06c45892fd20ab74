"""How the commands print: measure tables and full lines that are never cut or wrapped."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from vaelab.models import kinds

console = Console()

# measure -> (name for an AE/VAE, name for a CVAE given the true label y)
MEASURE_NAMES = {
    "nll": ("reconstruction NLL (nats/image)", "reconstruction NLL (nats/image)"),
    "mse": ("reconstruction MSE (per pixel)", "reconstruction MSE (per pixel)"),
    "kl": ("KL(q(z|x) || p(z)) (nats/image)", "KL(q(z|x,y) || p(z)) (nats/image)"),
    "elbo": ("ELBO on log p(x), C = 1 (nats/image)", "ELBO on log p(x|y), C = 1 (nats/image)"),
    "iwae": ("IWAE bound on log p(x) (nats/image)", "IWAE bound on log p(x|y) (nats/image)"),
}
GREY_LEVELS = (
    "note: on grey-level pixels (not binarised) the Bernoulli log p is unnormalised: the NLL "
    "is a cross-entropy and the ELBO and IWAE bound that, not a likelihood; they compare models "
    "on the same images, not with published log-likelihoods"
)


def print_metrics(title: str, kind: str, metrics: dict[str, Any]) -> None:
    """One row per measure; a CVAE gets a column with the true label and one without."""
    if kind not in kinds.names() or not kinds.record(kind).labels:
        rows = table("measure", "value", title=title)
        for key, (label, _) in MEASURE_NAMES.items():
            if key in metrics:
                rows.add_row(label, f"{metrics[key]:.4f}")
    else:
        rows = table("measure", "label y given", "no label", title=title)
        bare = metrics.get("without_label", {})
        for key, (_, label) in MEASURE_NAMES.items():
            if key in metrics:
                rows.add_row(label, f"{metrics[key]:.4f}", number(bare.get(key)))
        console.print(rows)
        line("no label: q(z|x, no label) and log p(x | no label), the CVAE given label -1")
        return
    console.print(rows)


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose numbers are never cut, at 80 columns and in a pipe."""
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(
            header, no_wrap=i > 0, overflow="fold", justify="left" if i == 0 else "right"
        )
    return table


def line(text: str) -> None:
    """A full line on stdout, never wrapped or cut at the terminal's width."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)
