"""What every step of one study shares, as one object: its settings, data, folder, digit
judge, what it could not measure and where its time went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from vaelab.core.config import StudyConfig
from vaelab.data.mnist import MNIST
from vaelab.experiments.common import StudyData
from vaelab.models.classifier import DigitClassifier


@dataclass
class StudyContext:
    """One study's shared state. `data` is the headline's images (the first of
    `cfg.eval_images`); `judge` and `judge_name` are set once the digit classifier is trained
    or reused; `skipped` maps a measure to why it was not measured; `timings` collects each
    step's seconds for results.json."""

    cfg: StudyConfig
    mnist: MNIST
    data: StudyData
    out: Path
    console: Console
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    judge: DigitClassifier | None = None
    judge_name: str = ""

    def log(self, text: str) -> None:
        self.console.print(text)
