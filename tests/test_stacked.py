"""The stacked forward/backward equals autograd of `losses.objective`, member by member,
with the fused C kernels and with torch ops alike."""

import contextlib

import pytest
import torch

from vaelab.core.config import ModelConfig
from vaelab.models import kernels
from vaelab.models.kinds import build_model
from vaelab.models.losses import objective
from vaelab.training.stacked import FlatAdam, Stack, forward_backward


@pytest.fixture(autouse=True, params=["kernels", "torch ops"])
def step_path(request):
    if request.param == "kernels" and kernels._load()[0] is None:
        pytest.skip(kernels.kernels_status())
    with kernels.turned_off() if request.param == "torch ops" else contextlib.nullcontext():
        yield request.param


def stacked_from(models, stack):
    flat = torch.zeros(stack.numel)
    for g, model in enumerate(models):
        for name, view in stack.member(flat, g).items():
            view.copy_(model.state_dict()[name])
    return flat


def setup(kind, latents, batch=7, k=3, seed=0):
    torch.manual_seed(seed)
    cfgs = [ModelConfig(kind=kind, latent=z, hidden=12, embed=5, input_dim=20) for z in latents]
    models = [build_model(c) for c in cfgs]
    stack = Stack(cfgs)
    x = torch.rand(len(cfgs), batch, 20)
    y = torch.randint(-1, 10, (len(cfgs), batch))
    eps = torch.zeros(len(cfgs), k, batch, stack.zmax)
    gens = [torch.Generator().manual_seed(100 + g) for g in range(len(cfgs))]
    for g, z in enumerate(latents):  # each member's own draw at its own shape, then padded
        eps[g, :, :, :z] = torch.randn((k, batch, z), generator=gens[g])
    return cfgs, models, stack, x, y, eps


@pytest.mark.parametrize(
    ("kind", "kl_weights"),
    [
        ("ae", (0.3,) * 3),
        ("vae", (0.3,) * 3),
        ("cvae", (0.3,) * 3),
        ("vae", (0.01, 0.3, 1.0)),  # a sweep of C in one group: each member its own weight
        ("cvae", (1.0, 0.0, 0.1)),
    ],
)
def test_gradients_match_autograd_of_the_objective(kind, kl_weights):
    cfgs, models, stack, x, y, eps = setup(kind, [2, 5, 3])
    flat = stacked_from(models, stack)
    grad = torch.full_like(flat, float("nan"))  # every entry must be written
    terms = forward_backward(
        stack,
        stack.views(flat),
        stack.views(grad),
        x,
        y if kind == "cvae" else None,
        eps if kind != "ae" else None,
        kl_weight=kl_weights,
    )
    assert torch.isfinite(grad).all()
    for g, model in enumerate(models):
        gen = torch.Generator().manual_seed(100 + g)
        out = objective(
            model,
            x[g],
            y[g] if kind == "cvae" else None,
            kl_weight=kl_weights[g],
            n_samples=3,
            generator=gen,
        )
        out.loss.backward()
        torch.testing.assert_close(terms[g], torch.stack(out).detach(), rtol=1e-5, atol=1e-5)
        mine = stack.member(grad, g)
        for name, param in model.named_parameters():
            torch.testing.assert_close(mine[name], param.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_padding_gets_zero_gradient_and_stays_zero_under_adam():
    cfgs, models, stack, x, y, eps = setup("cvae", [2, 6])
    flat = stacked_from(models, stack)
    padded = torch.ones_like(flat, dtype=torch.bool)
    for g in range(len(cfgs)):
        for view in stack.member(padded, g).values():
            view.fill_(False)  # what remains True is padding
    assert padded.sum() > 0 and (flat[padded] == 0).all()
    adam = FlatAdam(flat, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(3):
        forward_backward(stack, stack.views(flat), stack.views(adam.grad), x, y, eps, 0.1)
        assert (adam.grad[padded] == 0).all()
        adam.step()
    assert (flat[padded] == 0).all() and (flat[~padded] != 0).any()


def test_flat_adam_equals_torch_adam():
    torch.manual_seed(0)
    p = torch.randn(50)
    ref = p.clone().requires_grad_()
    opt = torch.optim.Adam([ref], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    adam = FlatAdam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    for _ in range(4):
        g = torch.randn(50)
        ref.grad = g.clone()
        opt.step()
        adam.grad.copy_(g)
        adam.step()
    torch.testing.assert_close(p, ref.detach(), rtol=0, atol=1e-7)


def test_logits_beyond_the_exp_limit_keep_loss_and_gradient_exact():
    cfgs, models, stack, x, y, eps = setup("vae", [3])
    with torch.no_grad():
        models[0].dec_out.bias[:4] = torch.tensor([100.0, -100.0, 90.0, 200.0])
    flat = stacked_from(models, stack)
    grad = torch.zeros_like(flat)
    terms = forward_backward(stack, stack.views(flat), stack.views(grad), x, None, eps, 0.1)
    out = objective(
        models[0], x[0], kl_weight=0.1, n_samples=3, generator=torch.Generator().manual_seed(100)
    )
    out.loss.backward()
    torch.testing.assert_close(terms[0], torch.stack(out).detach(), rtol=1e-5, atol=1e-4)
    for name, param in models[0].named_parameters():
        torch.testing.assert_close(stack.member(grad, 0)[name], param.grad, rtol=1e-4, atol=1e-5)
