"""Stopping safely: a training state copied in memory, and signals that wait for a write.

Ctrl-C and SIGTERM are turned into KeyboardInterrupt (so a terminated run saves like an
interrupted one), and held while an epoch's metrics and snapshot are written together.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import Tensor


@dataclass
class Snapshot:
    """Everything a checkpoint holds, copied at an epoch's end or at the last step."""

    step: int  # optimizer steps done
    params: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor
    count: Tensor  # Adam's step count
    rng: list[dict[str, str]]  # per member; batch order's as of the epoch's start
    within: int  # steps done of the epoch under way (0 at an epoch's end)
    sums: list[list[float]]  # per member: the epoch's loss terms so far, times images
    seconds: float  # time spent in the epoch under way so far


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so a terminated run saves like an interrupted one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait for the end of the block, then interrupt as they would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: object) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        raise KeyboardInterrupt
