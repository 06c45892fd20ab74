"""M2 (Kingma et al. 2014): its objective and gradients against a plain nn.Module written
from the paper with torch.distributions, labels inferred where none is given, and training
through the one group trainer (grouped equals alone, resume bit for bit)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.core.errors import VaelabError
from vaelab.data.tensors import TensorData, compact_data
from vaelab.evaluation.measures import per_image_error
from vaelab.models.kinds import build_model
from vaelab.models.losses import elbo, m2_objective
from vaelab.models.networks import M2
from vaelab.training.checkpoint import load_model
from vaelab.training.labelled import LabelledOrder
from vaelab.training.run import train
from vaelab.training.trainer import TrainingRun, classification_weight, train_group

D, H, E = 20, 12, 5


class PlainM2(nn.Module):
    """M2 as the paper writes it, one label at a time, with its own layers."""

    def __init__(self, z: int) -> None:
        super().__init__()
        self.enc_x, self.enc_y = nn.Linear(D, H), nn.Embedding(10, E)
        self.mu, self.ln_var = nn.Linear(H + E, z), nn.Linear(H + E, z)
        self.dec_z, self.dec_y = nn.Linear(z, H), nn.Embedding(10, E)
        self.out = nn.Linear(H + E, D)
        self.cls = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 10))

    def copy_from(self, m: M2) -> None:
        with torch.no_grad():
            pairs = [(self.enc_x, m.enc_hidden), (self.dec_z, m.dec_hidden),
                     (self.mu, m.enc_mu), (self.ln_var, m.enc_ln_var),
                     (self.cls[0], m.cls_hidden), (self.cls[2], m.cls_out)]  # fmt: skip
            for mine, theirs in pairs:
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
            self.enc_y.weight.copy_(m.enc_label.weight)
            self.dec_y.weight.copy_(m.dec_label.weight)
            self.out.weight.copy_(torch.cat([m.dec_out.weight, m.dec_label_out.weight], 1))
            self.out.bias.copy_(m.dec_out.bias)

    def bound(self, x, label, eps, c):
        """L(x, y): E_q[-log p(x|y,z)] over the draws eps (k, B, Z) + c KL(q(z|x,y) || p(z))."""
        y = torch.full((len(x),), label, dtype=torch.long)
        h = torch.cat([torch.tanh(self.enc_x(x)), torch.tanh(self.enc_y(y))], -1)
        q = Normal(self.mu(h), torch.exp(0.5 * self.ln_var(h)))
        z = q.mean + eps * q.stddev
        hy = torch.tanh(self.dec_y(y)).expand(len(eps), -1, -1)
        logits = self.out(torch.cat([torch.tanh(self.dec_z(z)), hy], -1))
        # grey-level x: the Bernoulli cross-entropy the models use, outside its {0, 1} support
        nll = -Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1).mean(0)
        kl = kl_divergence(q, Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))).sum(-1)
        return nll, kl

    def terms(self, x, y, eps, c, ce_weight, labelled=None):
        """Mean bound per image + ce_weight * mean -log q(y|x) over the labelled images:
        `labelled` (images, labels) where given, else the batch's own labelled ones; and the
        mean reconstruction and KL each image is scored with (its label's, or expected under
        q(y|x))."""
        b = len(x)
        scored = [self.bound(x, lab, eps[:, lab * b : (lab + 1) * b], c) for lab in range(10)]
        nll, kl = (torch.stack(t, 1) for t in zip(*scored, strict=True))  # (B, 10) each
        bounds = nll + c * kl
        qy = Categorical(logits=self.cls(x))
        total, recon, kls = [], [], []
        for i in range(b):
            if y[i] >= 0:
                total.append(bounds[i, y[i]])
                recon.append(nll[i, y[i]])
                kls.append(kl[i, y[i]])
            else:
                total.append((qy.probs[i] * bounds[i]).sum() - qy.entropy()[i])
                recon.append((qy.probs[i] * nll[i]).sum())
                kls.append((qy.probs[i] * kl[i]).sum())
        if labelled is None:
            known = y >= 0
            ce = -qy.log_prob(y.clamp(min=0))[known]
        else:
            ce = -Categorical(logits=self.cls(labelled[0])).log_prob(labelled[1])
        loss = torch.stack(total).mean() + ce_weight * ce.mean()
        return loss, torch.stack(recon).mean(), torch.stack(kls).mean()


def m2(z=3, seed=0) -> M2:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind="m2", latent=z, hidden=H, embed=E, input_dim=D))


@pytest.mark.parametrize("separate", [False, True], ids=["in-batch", "labelled-batch"])
def test_the_objective_and_its_gradients_equal_the_papers_written_plainly(separate):
    model, plain = m2(), PlainM2(3)
    plain.copy_from(model)
    model.train()
    x = torch.rand(6, D)
    y = torch.tensor([3, -1, 0, -1, -1, 9])  # labelled and unlabelled in one batch
    labelled = (torch.rand(4, D), torch.tensor([1, 1, 7, 2])) if separate else None
    k, c, w = 4, 0.3, 7.5
    eps = torch.randn((k, 10 * 6, 3), generator=torch.Generator().manual_seed(5))
    out = m2_objective(model, x, y, kl_weight=c, n_samples=k, ce_weight=w,
                       generator=torch.Generator().manual_seed(5), labelled=labelled)  # fmt: skip
    expected, recon, kl = plain.terms(x, y, eps, c, w, labelled)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-5)
    # the logged terms: a swap of the two, or q(y|x)'s weights dropped, fails here
    torch.testing.assert_close(out.reconstruction, recon, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.kl, kl, rtol=1e-5, atol=1e-5)
    out.loss.backward()
    expected.backward()
    pairs = {
        "enc_hidden.weight": plain.enc_x.weight.grad, "enc_label.weight": plain.enc_y.weight.grad,
        "enc_mu.weight": plain.mu.weight.grad, "enc_ln_var.bias": plain.ln_var.bias.grad,
        "dec_hidden.weight": plain.dec_z.weight.grad, "dec_label.weight": plain.dec_y.weight.grad,
        "dec_out.weight": plain.out.weight.grad[:, :H],
        "dec_label_out.weight": plain.out.weight.grad[:, H:],
        "cls_hidden.weight": plain.cls[0].weight.grad, "cls_out.bias": plain.cls[2].bias.grad,
    }  # fmt: skip
    grads = dict(model.named_parameters())
    for name, want in pairs.items():
        torch.testing.assert_close(grads[name].grad, want, rtol=1e-4, atol=1e-5, msg=name)


def test_an_unlabelled_image_is_scored_under_every_label_not_one():
    model = m2()
    model.train()
    x = torch.rand(4, D)
    gen = torch.Generator().manual_seed(1)
    unlabelled = m2_objective(model, x, None, n_samples=2, generator=gen).loss
    gen = torch.Generator().manual_seed(1)
    minus_one = m2_objective(model, x, torch.full((4,), -1), n_samples=2, generator=gen).loss
    assert unlabelled == minus_one
    # the classifier gets a gradient from unlabelled images alone (through q(y|x) and H)
    unlabelled.backward()
    assert model.cls_out.weight.grad.abs().sum() > 0


def test_labels_are_inferred_where_none_is_given():
    model = m2().eval()
    x = torch.rand(5, D)
    guess = model.predict_proba(x).argmax(-1)
    assert torch.allclose(model.predict_proba(x).sum(-1), torch.ones(5))
    given = torch.tensor([1, -1, 2, -1, 3])
    filled = torch.where(given >= 0, given, guess)
    assert torch.equal(model.embed(x, given), model.embed(x, filled))
    assert torch.equal(model.reconstruct(x), model.reconstruct(x, guess))
    assert not torch.equal(model.reconstruct(x, (guess + 1) % 10), model.reconstruct(x, guess))
    # the test measures decode with the label encode used: q(y|x)'s, not "no label"
    nll, _ = per_image_error(model, x, torch.full((5,), -1))
    want, _ = per_image_error(model, x, guess)
    assert torch.equal(nll, want)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(
        elbo(model, x, None, n_samples=4, generator=gen()),
        elbo(model, x, guess, n_samples=4, generator=gen()),
    )


def _cfg(z=2, seed=0, epochs=2, **train_args) -> RunConfig:
    return RunConfig(
        ModelConfig(kind="m2", latent=z, hidden=16, embed=8),
        TrainConfig(
            **{
                "epochs": epochs,
                "batch_size": 50,
                "n_samples": 2,
                "seed": seed,
                "checkpoint_every": 1,
                "eval_every": 1,
                "device": "cpu",
                **train_args,
            }
        ),  # fmt: skip
        DataConfig(train_size=200, test_size=60, n_labelled=40),
    )


def test_the_classification_weight_is_the_setting_whatever_the_labels():
    for labelled in (40, 200):
        cfg = _cfg(classification_weight=0.2)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n_labelled=labelled))
        assert classification_weight(cfg) == 0.2
    vae = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="vae"))
    assert classification_weight(vae) == 0.0


def test_m2_trains_through_the_group_trainer_and_learns_to_classify(prototype_mnist, tmp_path):
    cfg = _cfg(epochs=25, lr=0.003)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    model = train(cfg, data, tmp_path / "m2")
    error = float((model.predict_proba(data.x_test).argmax(-1) != data.y_test).float().mean())
    assert error < 0.5  # ten prototypes, 40 labels: chance is 0.9
    loaded, saved = load_model(tmp_path / "m2", "cpu")
    assert isinstance(loaded, M2) and saved["config"]["model"]["kind"] == "m2"
    assert torch.equal(loaded.predict_proba(data.x_test), model.predict_proba(data.x_test))
    import json

    rows = [
        json.loads(line) for line in (tmp_path / "m2" / "metrics.jsonl").read_text().splitlines()
    ]
    assert all("test_error" in r for r in rows) and rows[-1]["test_error"] == pytest.approx(error)
    assert rows[-1]["test_error"] < rows[0]["test_error"]  # logged per epoch: it improved


def test_grouped_m2_equals_m2_alone(prototype_mnist, tmp_path):
    cfgs = [_cfg(z=2, seed=0), _cfg(z=4, seed=1, kl_weight=1.0)]
    members = [TrainingRun(c, compact_data(prototype_mnist, c), tmp_path / f"g{i}")
               for i, c in enumerate(cfgs)]  # fmt: skip
    train_group(members)
    for i, c in enumerate(cfgs):
        train(c, TensorData.from_mnist(prototype_mnist, c), tmp_path / f"a{i}")
        a, g = (
            load_file(tmp_path / f"a{i}/model.safetensors"),
            load_file(tmp_path / f"g{i}/model.safetensors"),
        )
        assert all(torch.equal(a[k], g[k]) for k in a)  # one computation per member either way


def test_an_interrupted_m2_resumes_bit_for_bit(prototype_mnist, tmp_path):
    cfg = _cfg(epochs=3)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "whole")
    train(
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1)),
        data,
        tmp_path / "cut",
    )
    train(cfg, data, tmp_path / "cut", resume=True)
    a, b = (
        load_file(tmp_path / "whole/model.safetensors"),
        load_file(tmp_path / "cut/model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_a_bad_classification_weight_is_one_line(weight):
    with pytest.raises(VaelabError, match="train.classification_weight"):
        _cfg(classification_weight=weight).validate()


def test_each_step_classifies_labelled_images_in_turn():
    y = torch.full((50,), -1)
    y[[3, 8, 20, 41]] = torch.tensor([0, 5, 5, 9])
    order = LabelledOrder([y, y], batch=3, seeds=[0, 1], where=["a", "b"])
    steps = order.epoch(8)  # (2 members, 8 steps, 3 images): 24 = 6 passes over the 4
    assert steps.shape == (2, 8, 3)
    for member in steps:
        passes = member.reshape(6, 4)
        assert all(sorted(p.tolist()) == [3, 8, 20, 41] for p in passes)  # each once a pass
    assert not torch.equal(steps[0], steps[1])  # each member its own order
    again = LabelledOrder([y, y], batch=3, seeds=[0, 1], where=["a", "b"]).epoch(8)
    assert torch.equal(steps, again)


def test_m2_without_labelled_images_is_one_line():
    with pytest.raises(VaelabError, match="M2 needs labelled images"):
        LabelledOrder([torch.full((5,), -1)], batch=2, seeds=[0], where=["run"])


def test_each_label_at_once_equals_one_label_at_a_time():
    """The batched ten-label pass (image part of the encoder once) against the CVAE's own
    encode and decode called with one label at a time."""
    model = m2(z=3).train()
    x, z = torch.rand(5, D), torch.randn(2, 10, 5, 3)
    mu, ln_var = model.encode_each_label(x)
    logits = model.decode_each_label(z)
    for label in range(10):
        y = torch.full((5,), label)
        want = super(M2, model).encode(x, y)
        torch.testing.assert_close(mu[label], want.mu)
        torch.testing.assert_close(ln_var[label], want.ln_var)
        torch.testing.assert_close(logits[:, label], model.decode(z[:, label], y))
