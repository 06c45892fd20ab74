"""The architecture settings (model.hidden, activation, label_at): Kingma et al.'s M2 and CVAE
with the label at the input of both networks, checked against a plain nn.Module written from
the paper's equations with torch.distributions, and trained by autograd on each member's own
module through the one group trainer (checkpoints, bit-for-bit resume)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence
from torch.nn import functional as F

from vaelab.core.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    StudyConfig,
    TrainConfig,
    from_dict,
    to_dict,
)
from vaelab.core.errors import VaelabError
from vaelab.data.tensors import TensorData, compact_data
from vaelab.models.kinds import build_model
from vaelab.models.losses import m2_objective, objective
from vaelab.training.identity import run_name
from vaelab.training.run import train
from vaelab.training.trainer import GroupTrainer, TrainingRun

D, HIDDEN, Z = 20, (12, 7), 3
PAPER = {"hidden": HIDDEN, "activation": "softplus", "label_at": "input"}


def one_hot(y: torch.Tensor) -> torch.Tensor:
    """One-hot rows, all zeros for label -1 (no label)."""
    return F.one_hot(y.clamp(min=0), 10).float() * (y >= 0).unsqueeze(-1)


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in HIDDEN:
        layers += [nn.Linear(n_in, width), nn.Softplus()]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class PaperM2(nn.Module):
    """Kingma et al. (2014), M2: q(z|x,y) = N(mu(x, y), diag sigma^2(x, y)),
    p(x|y,z) = Bernoulli(f(y, z)), q(y|x) = Cat(pi(x)), each an MLP of two softplus layers,
    the one-hot y concatenated to the input of q(z|x,y) and of p(x|y,z)."""

    def __init__(self) -> None:
        super().__init__()
        self.q_z, self.p_x, self.q_y = mlp(D + 10, 2 * Z), mlp(Z + 10, D), mlp(D, 10)

    @torch.no_grad()
    def copy_from(self, m: nn.Module) -> None:
        s = m.state_dict()
        pairs = {
            self.q_z[0]: (torch.cat([s["enc_hidden.weight"], s["enc_label_in.weight"]], 1),
                          s["enc_hidden.bias"]),
            self.q_z[2]: (s["enc_hidden_2.weight"], s["enc_hidden_2.bias"]),
            self.q_z[4]: (torch.cat([s["enc_mu.weight"], s["enc_ln_var.weight"]]),
                          torch.cat([s["enc_mu.bias"], s["enc_ln_var.bias"]])),
            self.p_x[0]: (torch.cat([s["dec_hidden.weight"], s["dec_label_in.weight"]], 1),
                          s["dec_hidden.bias"]),
            self.p_x[2]: (s["dec_hidden_2.weight"], s["dec_hidden_2.bias"]),
            self.p_x[4]: (s["dec_out.weight"], s["dec_out.bias"]),
        }  # fmt: skip
        if "cls_out.weight" in s:
            names = ("cls_hidden", "cls_hidden_2", "cls_out")
            for mine, theirs in zip(self.q_y[::2], names, strict=True):
                pairs[mine] = (s[f"{theirs}.weight"], s[f"{theirs}.bias"])
        for layer, (weight, bias) in pairs.items():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)

    def grads_as(self) -> dict[str, torch.Tensor]:
        """This module's gradients under the vaelab model's parameter names."""
        q, p = self.q_z, self.p_x
        q0, p0 = q[0].weight.grad, p[0].weight.grad
        return {
            "enc_hidden.weight": q0[:, :D], "enc_label_in.weight": q0[:, D:],
            "enc_hidden_2.weight": q[2].weight.grad, "enc_mu.weight": q[4].weight.grad[:Z],
            "enc_ln_var.bias": q[4].bias.grad[Z:],
            "dec_hidden.weight": p0[:, :Z], "dec_label_in.weight": p0[:, Z:],
            "dec_hidden_2.bias": p[2].bias.grad, "dec_out.weight": p[4].weight.grad,
        }  # fmt: skip

    def bound(self, x, y, eps, c):
        """-log p(x|y,z) (mean over the draws eps (k, B, Z)) and KL(q(z|x,y) || p(z)), (B,)
        each, for labels y (B,) (-1: a zero one-hot)."""
        mu, ln_var = self.q_z(torch.cat([x, one_hot(y)], -1)).chunk(2, -1)
        q = Normal(mu, torch.exp(0.5 * ln_var))
        z = q.mean + eps * q.stddev
        logits = self.p_x(torch.cat([z, one_hot(y).expand(len(eps), -1, -1)], -1))
        # grey-level x: the Bernoulli cross-entropy the models use, outside its {0, 1} support
        nll = -Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1).mean(0)
        kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
        return nll, kl

    def terms(self, x, y, eps, c, ce_weight, labelled):
        """M2's loss (eq. 9 over the batch: mean bound + weight * mean -log q(y|x) of the
        labelled images) and the reconstruction and KL each image is scored with, expected
        under its own label or q(y|x)."""
        b = len(x)
        scored = [self.bound(x, torch.full((b,), lab), eps[:, lab * b : (lab + 1) * b], c)
                  for lab in range(10)]  # fmt: skip
        nll, kl = (torch.stack(t, 1) for t in zip(*scored, strict=True))  # (B, 10) each
        qy = Categorical(logits=self.q_y(x))
        weight = torch.where((y >= 0).unsqueeze(1), one_hot(y), qy.probs)  # (B, 10)
        entropy = torch.where(y >= 0, 0.0, qy.entropy())
        bound = (weight * (nll + c * kl)).sum(1) - entropy
        ce = -Categorical(logits=self.q_y(labelled[0])).log_prob(labelled[1])
        recon, kl_mean = (weight * nll).sum(1).mean(), (weight * kl).sum(1).mean()
        return bound.mean() + ce_weight * ce.mean(), recon, kl_mean


def paper_model(kind: str = "m2", seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind=kind, latent=Z, input_dim=D, **PAPER)).train()


def test_m2_with_the_label_at_the_input_equals_the_paper_written_plainly():
    model, plain = paper_model(), PaperM2()
    plain.copy_from(model)
    x, y = torch.rand(6, D), torch.tensor([3, -1, 0, -1, -1, 9])
    labelled = (torch.rand(4, D), torch.tensor([1, 1, 7, 2]))
    k, c, w = 3, 0.7, 2.5
    eps = torch.randn((k, 10 * 6, Z), generator=torch.Generator().manual_seed(5))
    out = m2_objective(model, x, y, kl_weight=c, n_samples=k, ce_weight=w,
                       generator=torch.Generator().manual_seed(5), labelled=labelled)  # fmt: skip
    loss, recon, kl = plain.terms(x, y, eps, c, w, labelled)
    torch.testing.assert_close(out.loss, loss, rtol=1e-5, atol=1e-5)
    # what the metrics log shows: reconstruction and KL under the label each image is scored
    # with (a swap of the two, or dropping q(y|x)'s weights, fails here)
    torch.testing.assert_close(out.reconstruction, recon, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.kl, kl, rtol=1e-5, atol=1e-5)
    out.loss.backward()
    loss.backward()
    mine = dict(model.named_parameters())
    for name, want in plain.grads_as().items():
        torch.testing.assert_close(mine[name].grad, want, rtol=1e-4, atol=1e-6, msg=name)
    for theirs, name in ((plain.q_y[0], "cls_hidden"), (plain.q_y[4], "cls_out")):
        torch.testing.assert_close(mine[f"{name}.weight"].grad, theirs.weight.grad, rtol=1e-4,
                                   atol=1e-6)  # fmt: skip


def test_a_cvae_with_the_label_at_the_input_equals_the_paper_written_plainly():
    model, plain = paper_model("cvae"), PaperM2()
    plain.copy_from(model)
    x, y = torch.rand(5, D), torch.tensor([4, -1, 0, 9, -1])  # -1: no label, a zero one-hot
    k, c = 2, 0.3
    out = objective(model, x, y, kl_weight=c, n_samples=k,
                    generator=torch.Generator().manual_seed(2))  # fmt: skip
    eps = torch.randn((k, 5, Z), generator=torch.Generator().manual_seed(2))
    nll, kl = plain.bound(x, y, eps, c)
    expected = (nll + c * kl).mean()
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.reconstruction, nll.mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.kl, kl.mean(), rtol=1e-5, atol=1e-5)
    out.loss.backward()
    expected.backward()
    mine = dict(model.named_parameters())
    for name, want in plain.grads_as().items():
        torch.testing.assert_close(mine[name].grad, want, rtol=1e-4, atol=1e-6, msg=name)


def test_the_label_at_the_input_is_one_column_per_label_and_none_for_no_label():
    model = paper_model("cvae").eval()
    x = torch.rand(3, D)
    first = lambda y: model.enc_hidden(x) + one_hot(y) @ model.enc_label_in.weight.T  # noqa: E731
    h = model.act(model.enc_hidden_2(model.act(first(torch.tensor([2, 5, -1])))))
    torch.testing.assert_close(model.encode(x, torch.tensor([2, 5, -1])).mu, model.enc_mu(h))
    h = model.act(model.enc_hidden_2(model.act(model.enc_hidden(x))))
    torch.testing.assert_close(model.encode(x).mu, model.enc_mu(h))  # no label: W_y adds 0
    assert not torch.allclose(model.decode(torch.zeros(3, Z), torch.tensor([1, 1, 1])),
                              model.decode(torch.zeros(3, Z), torch.tensor([2, 2, 2])))  # fmt: skip


def _cfg(kind: str, epochs: int = 3, **model) -> RunConfig:
    return RunConfig(
        ModelConfig(kind=kind, latent=2, **({"hidden": (16, 8), "activation": "softplus",
                                             "label_at": "input"} | model)),
        TrainConfig(epochs=epochs, batch_size=50, n_samples=1, checkpoint_every=1, eval_every=1,
                    device="cpu", classification_weight=1.0),
        DataConfig(train_size=200, test_size=60, n_labelled=40),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["m2", "cvae"])
def test_kingmas_wiring_trains_by_autograd_and_resumes_bit_for_bit(kind, prototype_mnist, tmp_path):
    cfg = _cfg(kind)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    assert not GroupTrainer([TrainingRun(cfg, data, tmp_path / "probe")]).fused
    model = train(cfg, data, tmp_path / "whole")
    untrained = paper_model(kind).parameters()
    assert not any(torch.equal(p, q) for p, q in zip(model.parameters(), untrained, strict=True))
    short = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1))
    train(short, data, tmp_path / "cut")
    train(cfg, data, tmp_path / "cut", resume=True)
    a, b = (
        load_file(tmp_path / "whole/model.safetensors"),
        load_file(tmp_path / "cut/model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "enc_label_in.weight" in a and "enc_hidden_2.weight" in a


def test_a_group_of_kingmas_m2s_equals_each_alone(prototype_mnist, tmp_path):
    cfgs = [_cfg("m2", 2), dataclasses.replace(_cfg("m2", 2), train=dataclasses.replace(
        _cfg("m2").train, epochs=2, seed=1, classification_weight=3.0))]  # fmt: skip
    cfgs[1] = dataclasses.replace(cfgs[1], model=dataclasses.replace(cfgs[1].model, latent=5))
    members = [TrainingRun(c, compact_data(prototype_mnist, c), tmp_path / f"g{i}")
               for i, c in enumerate(cfgs)]  # fmt: skip
    GroupTrainer(members).fit()
    for i, c in enumerate(cfgs):
        train(c, TensorData.from_mnist(prototype_mnist, c), tmp_path / f"a{i}")
        a, g = (
            load_file(tmp_path / f"a{i}/model.safetensors"),
            load_file(tmp_path / f"g{i}/model.safetensors"),
        )
        assert all(torch.equal(a[k], g[k]) for k in a)  # each member its own computation


@pytest.mark.parametrize(
    "change", [{}, {"hidden": (16, 8)}, {"activation": "relu"}, {"label_at": "input"}]
)
def test_the_fused_step_serves_only_the_articles_architecture(change, prototype_mnist, tmp_path):
    cfg = _cfg("cvae", **({"hidden": (16,), "activation": "tanh", "label_at": "hidden"} | change))
    run = TrainingRun(cfg, TensorData.from_mnist(prototype_mnist, cfg), tmp_path)
    assert GroupTrainer([run]).fused == (change == {})


def test_hidden_takes_one_number_or_a_list_and_names_stay():
    one = from_dict(ModelConfig, {"hidden": 500})
    assert one.hidden == (500,) == ModelConfig(hidden=500).hidden
    assert from_dict(ModelConfig, {"hidden": [500, 300]}).hidden == (500, 300)
    assert from_dict(ModelConfig, to_dict(ModelConfig(hidden=(5, 4)))).hidden == (5, 4)
    base = StudyConfig().run_config("cvae", 4)
    same = dataclasses.replace(base, model=dataclasses.replace(base.model, hidden=(128,)))
    assert run_name(same) == run_name(base)
    for change in ({"hidden": (128, 64)}, {"activation": "softplus"}, {"label_at": "input"}):
        other = dataclasses.replace(base, model=dataclasses.replace(base.model, **change))
        assert run_name(other) != run_name(base)
    vae = StudyConfig().run_config("vae", 4)  # the VAE sees no label: where it enters is moot
    moved = dataclasses.replace(vae, model=dataclasses.replace(vae.model, label_at="input"))
    assert run_name(moved) == run_name(vae)


@pytest.mark.parametrize(
    "model, message",
    [
        ({"hidden": ()}, "model.hidden"),
        ({"hidden": (10, 0)}, "model.hidden"),
        ({"activation": "sigmoid"}, "model.activation"),
        ({"label_at": "output"}, "model.label_at"),
    ],
)
def test_a_bad_architecture_is_one_line(model, message):
    with pytest.raises(VaelabError, match=message):
        ModelConfig(kind="m2", **model).validate()
