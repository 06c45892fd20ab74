"""The one training loop: a group of runs trained as one stacked computation.

A group's members share the model kind, architecture, batch size, training-set size and
optimizer settings; latent size, seed, C and M2's classification weight may differ. The
article's models train by the hand-written stacked step (`stacked`), every other model by
autograd on its own module (`autograd_step`), both on one flat buffer with one Adam. Each
member keeps its own generators (batch order on the CPU, the noise of z on the device), its
own run folder, metrics log, checkpoints and milestones in the per-model format, so a model
checkpointed in a group resumes alone and the other way round. A single run is a group of one.

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
from vaelab.core.folders import RunFolder
from vaelab.core.lock import folder_lock
from vaelab.core.util import first_line
from vaelab.data.tensors import TensorData, with_data
from vaelab.models import spec
from vaelab.models.losses import objective
from vaelab.models.networks import AutoEncoder, build_model
from vaelab.training import checkpoint
from vaelab.training.autograd_step import AutogradStep, MemberLayout
from vaelab.training.identity import check_run_folder
from vaelab.training.labelled import LabelledOrder
from vaelab.training.reporter import Reporter, SilentReporter
from vaelab.training.safety import Snapshot, interrupts_held, sigterm_as_interrupt
from vaelab.training.stacked import FlatAdam, Stack, forward_backward

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
    bookkeeping = (t.epochs, t.checkpoint_every, t.eval_every)  # C, M2's weight: per member
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
        first = self.members[0]
        for m in self.members[1:]:
            if stack_key(m.cfg) != stack_key(first.cfg) or len(m.data.x_train) != len(
                first.data.x_train
            ):
                raise VaelabError(f"{m.run_dir} cannot train in one group with {first.run_dir}")
        self.reporter = reporter or SilentReporter()
        self.device = first.data.x_train.device
        configs = [m.cfg.model for m in self.members]
        self.fused = spec.fused(configs[0])  # the hand-written step, or autograd
        self.stack = Stack(configs) if self.fused else MemberLayout(configs)
        params = torch.zeros(self.stack.numel, device=self.device)
        for g, m in enumerate(self.members):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(m.cfg.train.seed)
                initial = build_model(m.cfg.model).state_dict()
            for name, view in self.stack.member(params, g).items():
                view.copy_(initial[name])
        self.kl_weights = tuple(m.cfg.train.kl_weight for m in self.members)  # C, per member
        self.ce_weights = tuple(classification_weight(m.cfg) for m in self.members)  # M2's
        t = first.cfg.train
        segments = None if self.fused else self.stack.segments
        self.adam = FlatAdam(params, t.lr, (t.beta1, t.beta2), t.adam_eps, segments)
        self.autograd = (
            None
            if self.fused
            else AutogradStep(self.stack, configs, self.adam.params, self.adam.grad)
        )
        self.batch_gens = [torch.Generator().manual_seed(m.cfg.train.seed) for m in self.members]
        self.noise_gens = [
            torch.Generator(self.device).manual_seed(m.cfg.train.seed + 1) for m in self.members
        ]
        self.pixel_gens = [  # binarize = dynamic: each member's fresh draw of its images
            torch.Generator(self.device).manual_seed(m.cfg.train.seed + 2)
            if m.cfg.data.binarize == "dynamic"
            else None
            for m in self.members
        ]
        self.labelled = (  # M2: each member's labelled images, taken in turn every step
            LabelledOrder(
                [m.data.y_train for m in self.members],
                t.labelled_batch,
                [m.cfg.train.seed + 3 for m in self.members],
                [str(m.run_dir) for m in self.members],
            )
            if self.stack.kind.classifier
            else None
        )
        self.epoch = 0
        self.snapshot: Snapshot | None = None
        self.saved_epoch = -1

    # --- the loop -------------------------------------------------------------------------

    def fit(self, resume: bool = False, at_most: int | None = None) -> list[AutoEncoder]:
        """Train every member to its epochs; returns the finished models in eval mode.

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
        t = self.members[0].cfg.train
        steps = -(-len(self.members[0].data.x_train) // t.batch_size)
        self.reporter.start(self.members[0].cfg, self.epoch, steps)
        self.snapshot = self._take_snapshot()
        try:
            with sigterm_as_interrupt():
                while self.epoch < t.epochs:
                    self._run_epoch(t.epochs)
        except KeyboardInterrupt:
            if self.snapshot.epoch > max(self.saved_epoch, 0):
                self._save_checkpoints(self.snapshot)
            raise
        self.reporter.finish()
        return [self._save_model(g) for g in range(len(self.members))]

    def _run_epoch(self, last: int) -> None:
        t = self.members[0].cfg.train
        started = time.perf_counter()
        rows = self.train_epoch()
        epoch = self.epoch + 1
        seconds = time.perf_counter() - started
        for g in range(len(self.members)):
            rows[g] = {"epoch": epoch, **rows[g], "seconds": seconds}
            if epoch == last or epoch % t.eval_every == 0:
                rows[g] |= {f"test_{k}": v for k, v in self.test_objective(g).items()}
                rows[g] |= self.validation_error(g)
        with interrupts_held():  # an epoch's metrics and its snapshot: both or neither
            self.epoch = epoch
            for g, m in enumerate(self.members):
                m.folder.append_metrics(rows[g])
            self.snapshot = self._take_snapshot()
        if self.epoch == last or self.epoch % t.checkpoint_every == 0:
            self._save_checkpoints(self.snapshot)
        if checkpoint.is_milestone(self.epoch, last):
            for g, m in enumerate(self.members):
                checkpoint.save_milestone(m.run_dir, self.epoch, self._weights(g), m.cfg)
        self.reporter.epoch(rows[0])

    def train_epoch(self) -> list[dict[str, float]]:
        """One pass over each member's training set in its own fresh random order."""
        t, n = self.members[0].cfg.train, len(self.members[0].data.x_train)
        order = torch.stack([torch.randperm(n, generator=gen) for gen in self.batch_gens])
        order = order.to(self.device)  # (G, N)
        if self.fused:
            views, grads = self.stack.views(self.adam.params), self.stack.views(self.adam.grad)
        steps = -(-n // t.batch_size)
        losses = torch.zeros(steps, len(self.members), device=self.device)
        sums = torch.zeros(len(self.members), 3, device=self.device)
        labelled = None if self.labelled is None else self.labelled.epoch(steps).to(self.device)
        for i, start in enumerate(range(0, n, t.batch_size)):
            index = order[:, start : start + t.batch_size]  # (G, b)
            x, y = self._batch(index)
            if self.autograd is None:  # the hand-written step of the article's models
                eps = self._noise(index.shape[1]) if self.stack.variational else None
                terms = forward_backward(self.stack, views, grads, x, y, eps, self.kl_weights)
            else:
                classified = None if labelled is None else self._batch(labelled[:, i])
                terms = self.autograd(
                    x, y, self.kl_weights, t.n_samples, self.ce_weights, self.noise_gens,
                    classified,
                )  # fmt: skip
            self.adam.step()
            losses[i] = terms[:, 0]
            sums += terms * index.shape[1]
            self.reporter.step(lambda loss=terms[0, 0]: loss.item())
        self._check_finite(losses)
        names = ("loss", "reconstruction", "kl")
        return [dict(zip(names, row, strict=True)) for row in (sums / n).tolist()]

    def _batch(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        """Each member's images (G, b, D) as float in [0, 1], and labels (G, b) for the CVAE."""
        sources = [m.data.x_train for m in self.members]
        if all(_same_tensor(s, sources[0]) for s in sources):  # one gather for the group
            x = sources[0].index_select(0, index.reshape(-1)).view(*index.shape, -1)
        else:
            x = torch.stack([s.index_select(0, i) for s, i in zip(sources, index, strict=True)])
        if x.dtype == torch.uint8:  # equal to data.to_float: pixel / 255
            x = x.to(torch.float32).div_(255.0)
        if any(self.pixel_gens):  # x is this batch's own copy (index_select)
            for g, gen in enumerate(self.pixel_gens):
                if gen is not None:  # each image a Bernoulli draw with p = its grey level
                    u = torch.rand(x[g].shape, generator=gen, device=self.device)
                    x[g] = (u < x[g]).to(x.dtype)
        if not self.stack.labels:
            return x, None
        labels = [
            m.data.y_train.index_select(0, i) for m, i in zip(self.members, index, strict=True)
        ]
        return x, torch.stack(labels)

    def _noise(self, b: int) -> Tensor:
        """(G, k, b, Z): each member's own draw at its own shape, zero-padded to Z."""
        k, z_max = self.members[0].cfg.train.n_samples, self.stack.zmax
        draws = [
            torch.randn((k, b, z), generator=gen, device=self.device)
            for z, gen in zip(self.stack.latents, self.noise_gens, strict=True)
        ]
        if len(draws) == 1:
            return draws[0].unsqueeze(0)
        eps = torch.zeros(len(draws), k, b, z_max, device=self.device)
        for g, draw in enumerate(draws):
            eps[g, ..., : draw.shape[-1]] = draw
        return eps

    def _check_finite(self, losses: Tensor) -> None:
        """Stop before anything of a diverged epoch is written (the last checkpoint stays)."""
        bad_loss = ~torch.isfinite(losses)  # (steps, G)
        if bool(bad_loss.any()) or not bool(torch.isfinite(self.adam.params).all()):
            step, g = (
                divmod(int(bad_loss.reshape(-1).nonzero()[0]), len(self.members))
                if bool(bad_loss.any())
                else (len(losses) - 1, self._first_nonfinite_member())
            )
            raise VaelabError(
                f"{self.members[g].run_dir}: training diverged at epoch {self.epoch + 1}, "
                f"step {step + 1} (the loss or a weight is not finite); nothing of that epoch "
                "was saved: try a smaller learning rate"
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
                ce_weight=self.ce_weights[g],
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
        if not self.stack.kind.classifier or data.x_val is None or not len(data.x_val):
            return {}
        return {"validation_error": classifier_error(self.model(g), data.x_val, data.y_val)}

    def model(self, g: int) -> AutoEncoder:
        """Member g as an ordinary model (a copy of its weights), in eval mode."""
        with torch.random.fork_rng(devices=[]):
            model = build_model(self.members[g].cfg.model)
        model.load_state_dict(self._weights(g))
        return model.to(self.device).eval()

    def _weights(self, g: int, params: Tensor | None = None) -> dict[str, Tensor]:
        views = self.stack.member(self.adam.params if params is None else params, g)
        return {k: v.detach().clone() for k, v in views.items()}

    # --- checkpoints, snapshots and the finished models ----------------------------------

    def _take_snapshot(self) -> Snapshot:
        rng = [
            {"batch": checkpoint.generator_state(b), "noise": checkpoint.generator_state(n)}
            | ({"pixels": checkpoint.generator_state(p)} if p is not None else {})
            for b, n, p in zip(self.batch_gens, self.noise_gens, self.pixel_gens, strict=True)
        ]
        if self.labelled is not None:
            for state, gen in zip(rng, self.labelled.gens, strict=True):
                state["labelled"] = checkpoint.generator_state(gen)
        a = self.adam
        return Snapshot(
            self.epoch,
            a.params.clone(),
            a.exp_avg.clone(),
            a.exp_avg_sq.clone(),
            a.step_count.clone(),
            rng,
        )

    def _save_checkpoints(self, snap: Snapshot) -> None:
        for g, m in enumerate(self.members):
            tensors = {f"model.{k}": v for k, v in self._weights(g, snap.params).items()}
            for name, buffer in (("exp_avg", snap.exp_avg), ("exp_avg_sq", snap.exp_avg_sq)):
                for i, view in enumerate(self.stack.member(buffer, g).values()):
                    tensors[f"optim.{i}.{name}"] = view
                    tensors[f"optim.{i}.step"] = snap.step
            tensors = {k: v.detach().cpu().clone() for k, v in tensors.items()}  # unshared
            meta = {"config": to_dict(m.cfg), "rng": snap.rng[g]}
            checkpoint.save_checkpoint(m.run_dir, snap.epoch, tensors, meta)
        self.saved_epoch = snap.epoch

    def _restore(self, at_most: int | None = None) -> None:
        epochs = set()
        for g, m in enumerate(self.members):
            found = checkpoint.latest_checkpoint(m.run_dir, at_most=at_most)
            if found is None:
                m.folder.write_metrics([])  # start over: no checkpoint means no epoch counts
                epochs.add(0)
                continue
            try:
                epochs.add(self._load_member(g, *found))
            except (KeyError, ValueError, RuntimeError, TypeError) as err:
                raise VaelabError(
                    f"the checkpoint in {m.run_dir} does not fit: {first_line(err)}"
                ) from None
        if len(epochs) > 1:
            raise VaelabError("the runs of a group were checkpointed at different epochs")
        self.epoch = self.saved_epoch = epochs.pop()
        for m in self.members:
            if self.epoch > m.cfg.train.epochs:
                raise VaelabError(
                    f"{m.run_dir} has already trained {self.epoch} epochs, more than the "
                    f"{m.cfg.train.epochs} asked for; ask for at least {self.epoch}"
                )
            # epochs logged after the checkpoint will be trained again: drop them
            rows = [r for r in m.folder.read_metrics() if r["epoch"] <= self.epoch]
            m.folder.write_metrics(rows)

    def _load_member(self, g: int, record: dict[str, Any], tensors: dict[str, Tensor]) -> int:
        targets = {f"model.{k}": v for k, v in self.stack.member(self.adam.params, g).items()}
        for name in ("exp_avg", "exp_avg_sq"):
            views = self.stack.member(getattr(self.adam, name), g).values()
            targets |= {f"optim.{i}.{name}": v for i, v in enumerate(views)}
        for key, view in targets.items():
            if tensors[key].shape != view.shape:
                raise ValueError(f"{key} has shape {tuple(tensors[key].shape)}")
            view.copy_(tensors[key])
        self.adam.step_count.copy_(tensors["optim.0.step"])
        checkpoint.set_generator_state(self.batch_gens[g], record["rng"]["batch"])
        checkpoint.set_generator_state(self.noise_gens[g], record["rng"]["noise"])
        if self.pixel_gens[g] is not None:
            checkpoint.set_generator_state(self.pixel_gens[g], record["rng"]["pixels"])
        if self.labelled is not None:
            checkpoint.set_generator_state(self.labelled.gens[g], record["rng"]["labelled"])
        return int(record["epoch"])

    def _save_model(self, g: int) -> AutoEncoder:
        m = self.members[g]
        model = self.model(g)
        rows = m.folder.read_metrics()
        checkpoint.save_model(m.run_dir, model, m.cfg, {"final": rows[-1] if rows else {}})
        return model


def classification_weight(cfg: RunConfig) -> float:
    """M2's weight of the labelled images' mean -log q(y|x) against the mean bound per image
    (`train.classification_weight`, docs/m2.md); 0 for a kind without q(y|x)."""
    return cfg.train.classification_weight if spec.kind(cfg.model.kind).classifier else 0.0


@torch.no_grad()
def classifier_error(model: AutoEncoder, x: Tensor, y: Tensor, batch: int = 1000) -> float:
    """The share of images x whose label y q(y|x)'s most probable digit misses."""
    guess = torch.cat(
        [model.classify(x[i : i + batch]).argmax(-1) for i in range(0, len(x), batch)]
    )
    return int((guess != y).sum()) / len(y)  # exact: wrong images over images


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.dtype == b.dtype


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
    epochs = [m.folder.latest_epoch() if resume else 0 for m in members]
    common = min(epochs, default=0)
    if len(set(epochs)) <= 1 or all(
        common == 0 or common in m.folder.checkpoint_epochs() for m in members
    ):
        # a stop between two members' checkpoint writes: all resume from the older epoch, so
        # the group, and with it every float it computes, is the one an unbroken run had
        return GroupTrainer(members, reporter).fit(resume=resume, at_most=common)
    models: dict[int, AutoEncoder] = {}
    for epoch in sorted(set(epochs)):
        which = [i for i, e in enumerate(epochs) if e == epoch]
        trained = GroupTrainer([members[i] for i in which], reporter).fit(resume=resume)
        models |= dict(zip(which, trained, strict=True))
    return [models[i] for i in range(len(members))]
