"""vaelab: autoencoders, VAEs and conditional VAEs on MNIST, and a study comparing them.

`vaelab.load(run_dir)` gives a trained run's model (eval mode, inference gives plain tensors)
and its settings; torch is imported only when it is first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from vaelab.core.config import RunConfig
    from vaelab.models.networks import AutoEncoder

from vaelab.core import __version__

__all__ = ["LoadedRun", "__version__", "load"]


class LoadedRun(NamedTuple):
    model: AutoEncoder  # eval mode, on the device asked for
    config: RunConfig  # the settings it was trained with (data fingerprint included)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The finished model in `run_dir` and its config: `model, cfg = vaelab.load("runs/vae16")`.

    `device`: cpu (default), cuda, cuda:N or auto. Raises VaelabError for a folder that holds
    no finished model or a corrupt one.
    """
    from pathlib import Path

    from vaelab.core.device import resolve_device
    from vaelab.training import checkpoint

    where = resolve_device(device) if isinstance(device, str) else device
    model, record = checkpoint.load_model(Path(run_dir).expanduser(), where)
    return LoadedRun(model, _config(record))


def _config(record: dict[str, Any]) -> RunConfig:
    from vaelab.core.config import saved_run_config

    return saved_run_config(record["config"])
