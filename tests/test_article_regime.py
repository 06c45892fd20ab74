"""The article's own training regime: its AE loss (the notebook's mean squared error at its
scale) and Chainer's Adam, each against a plain reference written from the formula."""

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import make_prototype_mnist
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, to_dict
from vaelab.data.tensors import TensorData
from vaelab.models import kernels
from vaelab.models.kinds import build_model
from vaelab.models.losses import mse_objective, objective
from vaelab.training import checkpoint
from vaelab.training.run import train
from vaelab.training.stacked import FlatAdam, Stack, forward_backward


def notebook_mse(model, x):
    """`F.mean_squared_error(x, sigmoid(decode(mu))) / batchsize`, as sampleAE.py has it:
    torch's mean over every element, divided once more by the batch size."""
    return F.mse_loss(torch.sigmoid(model.decode(model.encode(x).mu)), x) / x.shape[0]


@pytest.fixture(params=["kernels", "torch ops"])
def step_path(request):
    if request.param == "kernels" and kernels._load()[0] is None:
        pytest.skip(kernels.kernels_status())
    with kernels.turned_off() if request.param == "torch ops" else contextlib.nullcontext():
        yield request.param


def test_mse_objective_is_the_notebooks_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="ae", latent=3, hidden=16))
    x = torch.rand(9, 784)
    out = objective(model, x, ae_loss="mse")
    expected = notebook_mse(model, x)
    torch.testing.assert_close(out.loss, expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(out.reconstruction, expected, rtol=1e-6, atol=0)
    assert out.kl.item() == 0
    by_hand = ((x - torch.sigmoid(model.decode(model.encode(x).mu))) ** 2).sum() / (9 * 9 * 784)
    torch.testing.assert_close(out.loss, by_hand, rtol=1e-5, atol=0)
    # the test objective is reported at the scale of a training batch of 100
    logits = model.decode(model.encode(x).mu)
    torch.testing.assert_close(mse_objective(logits, x, 100), expected * 9 / 100)


def test_fused_mse_step_matches_autograd_of_the_plain_reference(step_path):
    torch.manual_seed(0)
    cfgs = [ModelConfig(kind="ae", latent=z, hidden=12, input_dim=20) for z in (2, 5, 3)]
    models = [build_model(c) for c in cfgs]
    stack = Stack(cfgs, ae_loss="mse")
    flat = torch.zeros(stack.numel)
    for g, model in enumerate(models):
        for name, view in stack.member(flat, g).items():
            view.copy_(model.state_dict()[name])
    x = torch.rand(3, 7, 20)
    grad = torch.full_like(flat, float("nan"))
    terms = forward_backward(stack, stack.views(flat), stack.views(grad), x, None, None, 0.1)
    assert torch.isfinite(grad).all()
    for g, model in enumerate(models):
        reference = notebook_mse(model, x[g])
        reference.backward()
        torch.testing.assert_close(terms[g, 0], reference.detach(), rtol=1e-5, atol=0)
        torch.testing.assert_close(terms[g, 1], reference.detach(), rtol=1e-5, atol=0)
        assert terms[g, 2] == 0
        for name, param in model.named_parameters():
            scale = float(param.grad.abs().max())  # gradients at the notebook's tiny scale
            assert scale > 0
            torch.testing.assert_close(
                stack.member(grad, g)[name], param.grad, rtol=1e-4, atol=1e-5 * scale, msg=name
            )


def chainer_adam(p0, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Chainer's Adam update written from its formula, in float64:
    m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""
    p, m, v = p0.astype(np.float64), np.zeros(p0.shape), np.zeros(p0.shape)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        p = p - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return p


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-7, 1e-9])  # the MSE AE's gradients: ~1e-7
def test_chainer_adam_equals_the_formula_over_several_steps(scale):
    rng = np.random.default_rng(0)
    p0 = np.zeros(200, dtype=np.float32)
    grads = [(rng.standard_normal(200) * scale).astype(np.float32) for _ in range(6)]
    grads[3][:50] = 0.0  # a step without gradient for some weights
    params = torch.from_numpy(p0.copy())
    adam = FlatAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, chainer=True)
    for g in grads:
        adam.grad.copy_(torch.from_numpy(g))
        adam.step()
    expected = chainer_adam(p0, grads)
    np.testing.assert_allclose(params.numpy(), expected, rtol=2e-5, atol=1e-12)
    # torch's own Adam puts epsilon elsewhere: where gradients are tiny, it steps otherwise
    plain = torch.from_numpy(p0.copy())
    torch_adam = FlatAdam(plain, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    for g in grads:
        torch_adam.grad.copy_(torch.from_numpy(g))
        torch_adam.step()
    ratio = np.abs(plain.numpy()).sum() / np.abs(expected).sum()
    if scale <= 1e-7:
        assert ratio > 2  # epsilon on the uncorrected sqrt(v) slows the small steps
    else:
        assert ratio == pytest.approx(1.0, rel=1e-3)


def run_config(steps, optimizer="chainer-adam", ae_loss="mse", epochs=None):
    return RunConfig(
        model=ModelConfig(kind="ae", latent=4, hidden=32),
        train=TrainConfig(
            steps=steps,
            epochs=epochs,
            batch_size=50,
            optimizer=optimizer,
            ae_loss=ae_loss,
            checkpoint_every=1,
            eval_every=1,
        ),  # fmt: skip
        data=DataConfig(test_size=None),
    )


def test_the_trainer_with_both_is_the_notebooks_loop(tmp_path):
    """Eight steps of the fused trainer against a plain loop: autograd of the notebook's loss
    on the same batches from the same initial weights, Chainer's update in float64."""
    mnist = make_prototype_mnist(n_train=400, n_test=50)
    cfg = run_config(steps=8)
    data = TensorData.from_mnist(mnist, cfg, "cpu")
    trained = train(cfg, data, tmp_path / "run")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg.model)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(cfg.train.seed))
    params = list(model.parameters())
    start = [p.detach().numpy().copy() for p in params]
    grads: list[list[np.ndarray]] = [[] for _ in params]
    weights = [torch.from_numpy(s.copy()) for s in start]
    for step in range(8):
        for p, w in zip(params, weights, strict=True):
            p.data.copy_(w)
        model.zero_grad()
        notebook_mse(model, data.x_train[order[step * 50 : (step + 1) * 50]]).backward()
        for i, p in enumerate(params):
            grads[i].append(p.grad.numpy().copy())
            weights[i] = torch.from_numpy(chainer_adam(start[i], grads[i]).astype(np.float32))
    for (name, mine), expected in zip(trained.named_parameters(), weights, strict=True):
        torch.testing.assert_close(mine.detach(), expected, rtol=0, atol=2e-6, msg=name)
    rows = checkpoint.read_run_config(tmp_path / "run")
    assert (rows.train.optimizer, rows.train.ae_loss) == ("chainer-adam", "mse")


def test_chainer_adam_and_mse_resume_bit_for_bit_from_mid_epoch(tmp_path):
    mnist = make_prototype_mnist(n_train=400, n_test=50)
    short, whole = run_config(steps=12), run_config(steps=None, epochs=4)
    data = TensorData.from_mnist(mnist, short, "cpu")
    train(whole, data, tmp_path / "straight")
    train(short, data, tmp_path / "run")
    train(whole, data, tmp_path / "run", resume=True)
    straight = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == straight
    other = dataclasses.replace(whole, train=dataclasses.replace(whole.train, optimizer="adam"))
    train(other, data, tmp_path / "torch-adam")
    assert (tmp_path / "torch-adam" / "model.safetensors").read_bytes() != straight


def test_new_settings_at_their_defaults_leave_run_names_alone():
    from vaelab.training.identity import identity, run_name

    def named(kind="ae", **train):
        return run_name(RunConfig(ModelConfig(kind=kind), TrainConfig(**train)))

    assert named(optimizer="adam", ae_loss="bernoulli") == named()
    assert named(optimizer="chainer-adam") != named()
    assert named(ae_loss="mse") != named()  # the AE reads it ...
    assert named("vae", ae_loss="mse") == named("vae")  # ... no other kind does
    assert named(steps=1000) == named()  # neither length given: the article's 1000 steps
    assert named(steps=1000, epochs=None) != named(epochs=1000)  # steps are not epochs
    kept = identity(to_dict(RunConfig(train=TrainConfig(steps=40))))["train"]
    assert kept["steps"] == 40 and "epochs" not in kept
    kept = identity(to_dict(RunConfig(train=TrainConfig(epochs=3))))["train"]
    assert kept["epochs"] == 3 and "steps" not in kept


def test_the_cli_trains_in_steps_by_default_and_extends_a_run(tmp_path, capsys):
    from vaelab.cli.app import run
    from vaelab.core.folders import read_metrics

    mnist = make_prototype_mnist(n_train=400, n_test=50)
    npz = tmp_path / "m.npz"
    np.savez(npz, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test,
             y_test=mnist.y_test)  # fmt: skip
    base = ["train", "--data", str(npz), "--model", "ae", "--z", "2", "--batch-size", "50"]
    base += ["--device", "cpu", "--out", str(tmp_path / "run")]
    assert run([*base, "--steps", "12", "--ae-loss", "mse", "--optimizer", "chainer-adam"]) == 0
    out = capsys.readouterr().out
    assert "12 steps (1.5 epochs of 8 steps)" in out and "step 12/12 (epoch 2/2)" in out
    saved = checkpoint.read_run_config(tmp_path / "run").train
    assert (saved.steps, saved.epochs) == (12, None)
    assert (saved.ae_loss, saved.optimizer) == ("mse", "chainer-adam")
    assert run([*base, "--epochs", "3", "--resume"]) == 0  # on from mid-epoch, in epochs now
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [8, 16, 24]
    assert run([*base, "--epochs", "3", "--steps", "5", "--resume"]) == 1
    assert capsys.readouterr().err.strip().endswith("give --steps or --epochs, not both")
    assert run(["train", "--out", str(tmp_path / "x"), "--steps", "0"]) == 2  # a usage error
    assert RunConfig().train.steps is None and RunConfig().train.total_steps(60000) == 1000
