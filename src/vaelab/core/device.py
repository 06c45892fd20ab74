"""Which device a run uses: auto, cpu, cuda or cuda:N, resolved to one torch sees."""

from __future__ import annotations

import torch

from vaelab.core.config import check_device
from vaelab.core.errors import VaelabError


def same_device(wanted: torch.device, used: torch.device) -> bool:
    """True when `used` is the device `wanted` names (cuda means cuda:0)."""
    if wanted.type != used.type:
        return False
    return wanted.index is None or wanted.index == (used.index or 0)


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N as a torch device that exists here, or one clear VaelabError."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise VaelabError(f"device {name} was asked for, but torch sees no CUDA GPU")
        index = int(name.removeprefix("cuda:")) if ":" in name else 0
        if index >= count:
            raise VaelabError(f"device {name} was asked for, but torch sees {count} CUDA GPU(s)")
    return torch.device(name)
