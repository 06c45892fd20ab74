"""The one training loop: a group of runs trained as one stacked computation.

A group's members share the model kind, architecture, batch size, training-set size and
optimizer settings; latent size, seed, C and M2's classification weight may differ. The
article's models train by the hand-written stacked step (`stacked`), every other model by
autograd on its own module (`autograd_step`), both on one flat buffer with one Adam, behind
one `step(batch)` (`step`). Each member keeps its own generators (its batches, `batches`;
the noise of z on the device), its own run folder, metrics log, checkpoints and milestones in
the per-model format (the checkpoint's names and generator states: `checkpoint`), so a model
checkpointed in a group resumes alone and the other way round. A single run is a group of one.
This module keeps the loop: epochs, steps, evaluation, snapshots and when to write them.

The clock is the optimizer step: a run trains `train.total_steps` steps (the article's 1000,
or whole epochs), its metrics log has a row per epoch (and one for a last partial epoch),
checkpoints fall at epoch ends and at the last step, and milestones at steps 250 * 2^k and
the last. A checkpoint in mid-epoch holds the batch-order generators as of the epoch's start
and the steps done of it, so a resume redraws the same order and goes on bit for bit.

Safety: at each epoch's end the state is snapshot in memory and checked to be finite before
anything is written; a non-finite loss or weight stops training with the epoch and step,
and Ctrl-C or SIGTERM writes the last finished epoch as a checkpoint before re-raising.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vaelab.core import fileio
from vaelab.core.config import RunConfig, to_dict
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, row_step
from vaelab.core.lock import folder_lock
from vaelab.core.util import first_line
from vaelab.data.tensors import TensorData, with_data
from vaelab.models import kinds
from vaelab.models.kinds import build_model
from vaelab.models.losses import objective
from vaelab.models.networks import AutoEncoder
from vaelab.training import checkpoint
from vaelab.training.autograd_step import AutogradStep, MemberLayout
from vaelab.training.batches import Batches
from vaelab.training.identity import check_run_folder
from vaelab.training.reporter import Reporter, SilentReporter
from vaelab.training.safety import Snapshot, interrupts_held, sigterm_as_interrupt
from vaelab.training.stacked import FlatAdam, Stack
from vaelab.training.step import Batch, FusedStep, Layout, Step

EVAL_SEED_OFFSET = 1_000_003  # the test-loss noise never touches the training generators


@dataclass(frozen=True)
class TrainingRun:
    """One run of a group: its settings, its data (images float or uint8) and its folder."""

    cfg: RunConfig
    data: TensorData
    run_dir: Path

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)


def stack_key(cfg: RunConfig) -> tuple[Any, ...]:
    """What the members of one group share; latent size and seed may differ."""
    m, t = cfg.model, cfg.train
    shared = (t.batch_size, t.n_samples, t.lr, t.beta1, t.beta2, t.adam_eps, t.labelled_batch)
    shared += (
        t.optimizer,
        t.ae_loss if kinds.record(m.kind).role == "ae" else None,
    )  # C, M2's weight: per member
    bookkeeping = (t.epochs, t.steps, t.checkpoint_every, t.eval_every)
    architecture = (m.hidden, m.activation, m.label_at)
    return (m.kind, m.input_dim, *architecture, m.embed, m.n_labels, *shared, *bookkeeping)


class GroupTrainer:
    """Trains every member of a group, writing each one's checkpoints and metrics."""

    def __init__(self, members: list[TrainingRun], reporter: Reporter | None = None) -> None:
        if not members:
            raise VaelabError("a training group needs at least one run")
        self.members = [
            TrainingRun(with_data(m.cfg.validate(), m.data), m.data, Path(m.run_dir))
            for m in members
        ]
        for m in self.members:  # the data as loaded may leave fewer images than the settings
            kinds.check_labels(m.cfg.model.kind, m.cfg.data, len(m.data.x_train))
        first = self.members[0]
        for m in self.members[1:]:
            if stack_key(m.cfg) != stack_key(first.cfg) or len(m.data.x_train) != len(
                first.data.x_train
            ):
                raise VaelabError(f"{m.run_dir} cannot train in one group with {first.run_dir}")
        self.reporter = reporter or SilentReporter()
        self.device = first.data.x_train.device
        t = first.cfg.train
        self.n_train = len(first.data.x_train)
        self.steps_per_epoch = t.steps_per_epoch(self.n_train)
        self.total = t.total_steps(self.n_train)
        configs = [m.cfg.model for m in self.members]
        # the hand-written step (the record says which configs it serves), or autograd
        self.fused = kinds.record(configs[0].kind).fused(configs[0])
        self.layout: Layout = Stack(configs, t.ae_loss) if self.fused else MemberLayout(configs)
        params = torch.zeros(self.layout.numel, device=self.device)
        for g, m in enumerate(self.members):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(m.cfg.train.seed)
                initial = build_model(m.cfg.model).state_dict()
            for name, view in self.layout.member(params, g).items():
                view.copy_(initial[name])
        self.kl_weights = tuple(m.cfg.train.kl_weight for m in self.members)  # C, per member
        self.ce_weights = tuple(classification_weight(m.cfg) for m in self.members)  # M2's
        chainer = t.optimizer == "chainer-adam"
        self.adam = FlatAdam(
            params, t.lr, (t.beta1, t.beta2), t.adam_eps, self.layout.segments, chainer
        )
        self.batches = Batches(
            [m.cfg for m in self.members],
            [m.data for m in self.members],
            [str(m.run_dir) for m in self.members],
            labels=self.layout.labels,
            labelled_batch=t.labelled_batch if self.layout.kind.classifier else None,
            device=self.device,
        )
        self.noise_gens = [
            torch.Generator(self.device).manual_seed(m.cfg.train.seed + 1) for m in self.members
        ]
        self.train_step: Step = (  # the hand-written step of the article's models, or autograd
            FusedStep(
                self.layout, self.adam.params, self.adam.grad, self.kl_weights, t.n_samples,
                self.noise_gens, self.device,
            )
            if isinstance(self.layout, Stack)
            else AutogradStep(
                self.layout, configs, self.adam.params, self.adam.grad, t.ae_loss,
                kl_weights=self.kl_weights, n_samples=t.n_samples, ce_weights=self.ce_weights,
                generators=self.noise_gens,
            )
        )  # fmt: skip
        self.step = 0  # optimizer steps done: the clock
        self.sums = torch.zeros(len(self.members), 3, device=self.device)  # the epoch's so far
        self.seconds = 0.0  # spent on the epoch under way
        self.snapshot: Snapshot | None = None
        self.saved_step = -1
        self.partial_row = False  # the log's last row is of the epoch under way

    @property
    def epoch(self) -> int:
        """Whole epochs done."""
        return self.step // self.steps_per_epoch

    # --- the loop -------------------------------------------------------------------------

    def fit(self, resume: bool = False, at_most: int | None = None) -> list[AutoEncoder]:
        """Train every member to its last step; returns the finished models in eval mode.

        Each member's folder is locked for the whole fit: one writer per run folder."""
        with ExitStack() as locks:
            for m in self.members:
                locks.enter_context(folder_lock(m.run_dir))
                m.folder.clear_temporaries()  # what a killed writer left behind
            return self._fit(resume, at_most)

    def _fit(self, resume: bool, at_most: int | None) -> list[AutoEncoder]:
        for m in self.members:
            check_run_folder(m.run_dir, m.cfg, resume)
        if resume:
            self._restore(at_most)
        for m in self.members:
            fileio.write_json(m.folder.config, to_dict(m.cfg))
        self.reporter.start(self.members[0].cfg, self.step, self.total, self.steps_per_epoch)
        self.snapshot = self._take_snapshot()
        try:
            with sigterm_as_interrupt():
                while self.step < self.total:
                    self._run_epoch()
        except KeyboardInterrupt:
            if self.snapshot.step > max(self.saved_step, 0):
                self._save_checkpoints(self.snapshot)
            raise
        self.reporter.finish()
        return [self._save_model(g) for g in range(len(self.members))]

    def _run_epoch(self) -> None:
        """The rest of the epoch under way, or as much of it as the run's length leaves."""
        t, per = self.members[0].cfg.train, self.steps_per_epoch
        epoch, within = divmod(self.step, per)
        end = min(per, self.total - epoch * per)
        started = time.perf_counter()
        order, labelled = self.batches.draw_epoch(self.steps_per_epoch)
        losses = self._train_steps(order, labelled, within, end)
        self._check_finite(losses, epoch + 1, within)
        step, whole = epoch * per + end, end == per
        seconds = self.seconds + time.perf_counter() - started
        images = min(end * t.batch_size, self.n_train)
        rows = []
        for g, terms in enumerate((self.sums / images).tolist()):
            row = {"epoch": epoch + 1, "step": step, **dict(zip(TERMS, terms, strict=True))}
            rows.append(row | {"seconds": seconds})
            if step == self.total or (whole and (epoch + 1) % t.eval_every == 0):
                rows[g] |= {f"test_{k}": v for k, v in self.test_objective(g).items()}
                rows[g] |= self.validation_error(g)
        with interrupts_held():  # an epoch's metrics and its snapshot: both or neither
            self.step, self.seconds = step, 0.0 if whole else seconds
            if whole:
                self.sums.zero_()
            for g, m in enumerate(self.members):
                if self.partial_row:  # the row a last step in mid-epoch logged: replaced
                    m.folder.write_metrics([*m.folder.read_metrics()[:-1], rows[g]])
                else:
                    m.folder.append_metrics(rows[g])
            self.partial_row = not whole
            self.snapshot = self._take_snapshot(within=0 if whole else end)
        if step == self.total or (whole and (epoch + 1) % t.checkpoint_every == 0):
            self._save_checkpoints(self.snapshot)
        self.reporter.epoch(rows[0])

    def train_epoch(self) -> list[dict[str, float]]:
        """One whole pass over each member's training set in its own fresh random order,
        outside the run's clock; returns each member's mean terms."""
        self.sums.zero_()
        order, labelled = self.batches.draw_epoch(self.steps_per_epoch)
        losses = self._train_steps(order, labelled, 0, self.steps_per_epoch)
        self._check_finite(losses, self.epoch + 1, 0)
        found = (self.sums / self.n_train).tolist()
        self.sums.zero_()
        return [dict(zip(TERMS, row, strict=True)) for row in found]

    def _train_steps(self, order: Tensor, labelled: Tensor | None, first: int, end: int) -> Tensor:
        """Steps first..end-1 of the epoch whose batch order is `order`, adding each step's
        terms times its images to `self.sums`; returns each step's loss (end - first, G).
        A milestone step saves its weights as soon as it is taken."""
        b = self.members[0].cfg.train.batch_size
        losses = torch.zeros(end - first, len(self.members), device=self.device)
        base = self.step - first  # the step before the epoch's first
        for i in range(first, end):
            index = order[:, i * b : (i + 1) * b]  # (G, b)
            x, y = self.batches.batch(index)
            classified = None if labelled is None else self.batches.batch(labelled[:, i])
            terms = self.train_step(Batch(x, y, classified))
            self.adam.step()
            losses[i - first] = terms[:, 0]
            self.sums += terms * index.shape[1]
            self.reporter.step(lambda loss=terms[0, 0]: loss.item())
            if checkpoint.is_milestone(base + i + 1, self.total):
                self._check_finite(losses[: i - first + 1], base // self.steps_per_epoch + 1, first)
                self._save_milestones(base + i + 1)
        return losses

    def _save_milestones(self, step: int) -> None:
        for g, m in enumerate(self.members):
            weights = self._weights(g)
            checkpoint.save_milestone(m.run_dir, step, weights, m.cfg, self.steps_per_epoch)

    def _check_finite(self, losses: Tensor, epoch: int, first: int) -> None:
        """Stop before anything of a diverged epoch is written (the last checkpoint stays).
        `losses` (steps, G) are the epoch's from its step `first` on."""
        bad_loss = ~torch.isfinite(losses)  # (steps, G)
        if bool(bad_loss.any()) or not bool(torch.isfinite(self.adam.params).all()):
            step, g = (
                divmod(int(bad_loss.reshape(-1).nonzero()[0]), len(self.members))
                if bool(bad_loss.any())
                else (len(losses) - 1, self._first_nonfinite_member())
            )
            within = first + step + 1
            overall = (epoch - 1) * self.steps_per_epoch + within
            raise VaelabError(
                f"{self.members[g].run_dir}: training diverged at epoch {epoch}, "
                f"step {within} (step {overall} of {self.total}; the loss or a weight is not "
                "finite); nothing of that epoch was saved: try a smaller learning rate"
            )

    def _first_nonfinite_member(self) -> int:
        for g in range(len(self.members)):
            if not all(torch.isfinite(v).all() for v in self._weights(g).values()):
                return g
        return 0

    @torch.no_grad()
    def test_objective(self, g: int, batch: int = 1000) -> dict[str, float]:
        """Member g's training objective on its test set, with its own fixed noise."""
        m = self.members[g]
        model, t, x, y = self.model(g), m.cfg.train, m.data.x_test, m.data.y_test
        gen = torch.Generator(self.device).manual_seed(t.seed + EVAL_SEED_OFFSET)
        sums = torch.zeros(3, device=self.device)
        for start in range(0, len(x), batch):
            xb, yb = x[start : start + batch], y[start : start + batch]
            yb = yb if model.uses_labels else None
            out = objective(
                model, xb, yb, kl_weight=t.kl_weight, n_samples=t.n_samples, generator=gen,
                ce_weight=self.ce_weights[g], ae_loss=t.ae_loss, batch_size=t.batch_size,
            )  # fmt: skip
            sums += torch.stack(list(out)) * len(xb)
        loss, reconstruction, kl = (sums / len(x)).tolist()
        found = {"loss": loss, "reconstruction": reconstruction, "kl": kl}
        if model.has_classifier:  # the share of test images q(y|x) reads wrong
            found["error"] = classifier_error(model, x, y, batch)
        return found

    @torch.no_grad()
    def validation_error(self, g: int) -> dict[str, float]:
        """M2's share of member g's validation images that q(y|x) reads wrong ({} without
        a classifier or a validation split)."""
        data = self.members[g].data
        if not self.layout.kind.classifier or data.x_val is None or not len(data.x_val):
            return {}
        return {"validation_error": classifier_error(self.model(g), data.x_val, data.y_val)}

    def model(self, g: int) -> AutoEncoder:
        """Member g as an ordinary model (a copy of its weights), in eval mode."""
        with torch.random.fork_rng(devices=[]):
            model = build_model(self.members[g].cfg.model)
        model.load_state_dict(self._weights(g))
        return model.to(self.device).eval()

    def _weights(self, g: int, params: Tensor | None = None) -> dict[str, Tensor]:
        views = self.layout.member(self.adam.params if params is None else params, g)
        return {k: v.detach().clone() for k, v in views.items()}

    # --- checkpoints, snapshots and the finished models ----------------------------------

    def _take_snapshot(self, within: int = 0) -> Snapshot:
        """The state now; `within` > 0: in mid-epoch, `within` steps into it."""
        rng = [self.batches.rng_state(g, n, within) for g, n in enumerate(self.noise_gens)]
        a = self.adam
        return Snapshot(
            self.step,
            a.params.clone(),
            a.exp_avg.clone(),
            a.exp_avg_sq.clone(),
            a.step_count.clone(),
            rng,
            within,
            self.sums.tolist() if within else [[0.0] * 3 for _ in self.members],
            self.seconds if within else 0.0,
        )

    def _save_checkpoints(self, snap: Snapshot) -> None:
        for g, m in enumerate(self.members):
            moments = self._moments(g, snap.exp_avg, snap.exp_avg_sq)
            tensors = checkpoint.member_tensors(self._weights(g, snap.params), moments, snap.count)
            tensors = {k: v.detach().cpu().clone() for k, v in tensors.items()}  # unshared
            meta = {
                "epoch": snap.step // self.steps_per_epoch,  # whole epochs done
                "steps_per_epoch": self.steps_per_epoch,
                "within_epoch": snap.within,
                "epoch_sums": snap.sums[g],
                "epoch_seconds": snap.seconds,
                "config": to_dict(m.cfg),
                "rng": snap.rng[g],
            }
            checkpoint.save_checkpoint(m.run_dir, snap.step, tensors, meta)
        self.saved_step = snap.step

    def _restore(self, at_most: int | None = None) -> None:
        steps = set()
        per = self.steps_per_epoch
        for g, m in enumerate(self.members):
            found = checkpoint.latest_checkpoint(m.run_dir, at_most=at_most, steps_per_epoch=per)
            if found is None:
                m.folder.write_metrics([])  # start over: no checkpoint means no step counts
                steps.add(0)
                continue
            try:
                steps.add(self._load_member(g, *found))
            except (KeyError, ValueError, RuntimeError, TypeError) as err:
                raise VaelabError(
                    f"the checkpoint in {m.run_dir} does not fit: {first_line(err)}"
                ) from None
        if len(steps) > 1:
            raise VaelabError("the runs of a group were checkpointed at different steps")
        self.step = self.saved_step = steps.pop()
        for m in self.members:
            if self.step > self.total:
                raise VaelabError(
                    f"{m.run_dir} has already trained {self._length(self.step)}, more than the "
                    f"{self._length(self.total)} asked for; ask for at least "
                    f"{self._length(self.step)}"
                )
            # rows logged after the checkpoint will be trained again: drop them
            rows = [r for r in m.folder.read_metrics() if row_step(r, per) <= self.step]
            m.folder.write_metrics(rows)
        self.partial_row = self.step % per != 0

    def _length(self, steps: int) -> str:
        """ "3 epochs" where `steps` are whole epochs and the run counts epochs, else steps."""
        whole, rest = divmod(steps, self.steps_per_epoch)
        if self.members[0].cfg.train.epochs is not None and rest == 0:
            return f"{whole} epoch{'s' * (whole != 1)}"
        return f"{steps} step{'s' * (steps != 1)}"

    def _moments(self, g: int, exp_avg: Tensor, exp_avg_sq: Tensor) -> checkpoint.Moments:
        """Member g's views of Adam's two moments, one per weight in the weights' order."""
        return {
            "exp_avg": list(self.layout.member(exp_avg, g).values()),
            "exp_avg_sq": list(self.layout.member(exp_avg_sq, g).values()),
        }

    def _load_member(self, g: int, record: dict[str, Any], tensors: dict[str, Tensor]) -> int:
        a = self.adam
        weights = self.layout.member(a.params, g)
        count = checkpoint.load_member_tensors(
            tensors, weights, self._moments(g, a.exp_avg, a.exp_avg_sq)
        )
        a.load_step(count)
        self.batches.restore(g, record["rng"], self.noise_gens[g])
        step = checkpoint.record_step(record, self.steps_per_epoch)
        if step % self.steps_per_epoch:  # in mid-epoch: its terms so far
            sums = torch.tensor(record["epoch_sums"], dtype=self.sums.dtype)
            self.sums[g] = sums.to(self.device)
            self.seconds = float(record.get("epoch_seconds", 0.0))
        return step

    def _save_model(self, g: int) -> AutoEncoder:
        m = self.members[g]
        model = self.model(g)
        rows = m.folder.read_metrics()
        checkpoint.save_model(m.run_dir, model, m.cfg, {"final": rows[-1] if rows else {}})
        return model


def classification_weight(cfg: RunConfig) -> float:
    """M2's weight of the labelled images' mean -log q(y|x) against the mean bound per image
    (`train.classification_weight`, docs/m2.md); 0 for a kind without q(y|x)."""
    return cfg.train.classification_weight if kinds.record(cfg.model.kind).classifier else 0.0


@torch.no_grad()
def classifier_error(model: AutoEncoder, x: Tensor, y: Tensor, batch: int = 1000) -> float:
    """The share of images x whose label y q(y|x)'s most probable digit misses."""
    guess = torch.cat(
        [model.classify(x[i : i + batch]).argmax(-1) for i in range(0, len(x), batch)]
    )
    return int((guess != y).sum()) / len(y)  # exact: wrong images over images


def train_group(
    members: list[TrainingRun] | list[tuple[RunConfig, TensorData, Path]],
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> list[AutoEncoder]:
    """Train (or resume) runs as one group; returns their models in eval mode, in order.

    Runs checkpointed at different epochs (a stop between two members' checkpoint writes)
    resume as one group per epoch.
    """
    members = [m if isinstance(m, TrainingRun) else TrainingRun(*m) for m in members]
    per = members[0].cfg.train.steps_per_epoch(len(members[0].data.x_train)) if members else 1
    steps = [m.folder.latest_step(per) if resume else 0 for m in members]
    common = min(steps, default=0)
    if len(set(steps)) <= 1 or all(
        common == 0 or common in m.folder.checkpoint_steps(per) for m in members
    ):
        # a stop between two members' checkpoint writes: all resume from the older step, so
        # the group, and with it every float it computes, is the one an unbroken run had
        return GroupTrainer(members, reporter).fit(resume=resume, at_most=common)
    models: dict[int, AutoEncoder] = {}
    for step in sorted(set(steps)):
        which = [i for i, s in enumerate(steps) if s == step]
        trained = GroupTrainer([members[i] for i in which], reporter).fit(resume=resume)
        models |= dict(zip(which, trained, strict=True))
    return [models[i] for i in range(len(members))]


TERMS = ("loss", "reconstruction", "kl")  # a metrics row's training terms
