"""One run: a training group of one (`Trainer`, `train`).

The loop itself, its checkpoints, resume, milestones and safety live in
`vaelab.training.trainer`, the stacked arithmetic in `vaelab.training.stacked`. Randomness
comes from generators seeded by the config (batch order on the CPU, the noise of z on the
device) whose states are saved in every checkpoint, so a run that is killed and resumed ends
with the same weights, bit for bit on the CPU, as one that was not.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.core.config import RunConfig
from vaelab.data.tensors import TensorData, with_data
from vaelab.models.networks import AutoEncoder
from vaelab.training.reporter import PlainReporter, Reporter
from vaelab.training.trainer import GroupTrainer, TrainingRun


class Trainer:
    """Trains one model as `cfg` says, writing checkpoints and metrics into `run_dir`."""

    def __init__(
        self,
        cfg: RunConfig,
        data: TensorData,
        run_dir: str | Path,
        reporter: Reporter | None = None,
    ) -> None:
        self.cfg = with_data(cfg.validate(), data)
        self.data = data
        self.run_dir = Path(run_dir)
        self.group = GroupTrainer([TrainingRun(self.cfg, data, self.run_dir)], reporter)

    @property
    def epoch(self) -> int:
        return self.group.epoch

    @property
    def model(self) -> AutoEncoder:
        return self.group.model(0)

    def fit(self, resume: bool = False) -> AutoEncoder:
        return self.group.fit(resume=resume)[0]

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training set in a fresh random order; returns the mean terms."""
        return self.group.train_epoch()[0]

    def test_objective(self, batch: int = 1000) -> dict[str, float]:
        """The training objective on the test set, with its own fixed noise."""
        return self.group.test_objective(0, batch)


def train(
    cfg: RunConfig,
    data: TensorData,
    run_dir: str | Path,
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
    progress: bool = False,
) -> AutoEncoder:
    """Train (or resume) one model; returns it in eval mode. See `Trainer`.

    `progress=True` prints one line per epoch (a `reporter` given takes precedence).
    """
    if reporter is None and progress:
        reporter = PlainReporter()
    return Trainer(cfg, data, run_dir, reporter).fit(resume=resume)
