"""The fused C kernels: their numbers against float64, their edge cases, and how they load."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from test_group import TOLERANCE, TYPICAL, config, max_diff, share_beyond, weights
from vaelab.core.folders import read_metrics
from vaelab.data.tensors import TensorData
from vaelab.execution.runner import start_lines
from vaelab.models import kernels
from vaelab.training.run import train

needs_kernels = pytest.mark.skipif(
    kernels._load()[0] is None, reason=f"no C kernels here: {kernels.kernels_status()}"
)


def bernoulli_reference(logits, x, scale):
    """float64 rows (G, K, B) and gradient (G, K, B, D) of sum_d softplus(l) - x l."""
    lg, xx = logits.double(), x.double().unsqueeze(1)
    rows = (F.softplus(lg) - xx * lg).sum(-1)
    return rows, (torch.sigmoid(lg) - xx) * scale


def mnist_like(g=2, k=3, b=5, d=784, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(g, k, b, d, generator=gen) * 6
    logits[0, 0, 0, :8] = torch.tensor([0.0, -0.0, 1e-30, 40.0, -40.0, 79.0, 100.0, -150.0])
    x = torch.rand(g, b, d, generator=gen)
    x[..., :300] = 0.0  # MNIST is mostly background
    return logits, x


@needs_kernels
def test_bernoulli_rows_and_gradient_match_float64():
    logits, x = mnist_like()
    rows_ref, grad_ref = bernoulli_reference(logits, x, 0.01)
    torch_rows = (F.softplus(logits) - x.unsqueeze(1) * logits).sum(-1)  # fp32 torch ops
    grad = logits.clone()
    rows = kernels.bernoulli_nll_(grad, x, 0.01)
    # as close to float64 as fp32 torch ops are, to within a few units in the last place
    torch_error = ((torch_rows.double() - rows_ref).abs() / rows_ref.abs()).max()
    error = ((rows.double() - rows_ref).abs() / rows_ref.abs()).max()
    assert error < max(4 * torch_error, 1e-6)
    assert (grad.double() - grad_ref).abs().max() < 0.01 * 2e-7  # scale x a few ulp of 1


@needs_kernels
def test_bernoulli_softplus_tails_and_sigmoid_are_exact_where_fp32_can_be():
    logits = torch.linspace(-79, 79, 15801).view(1, 1, -1, 1)
    zeros = torch.zeros(1, logits.shape[2], 1)
    rows = kernels.bernoulli_nll_(logits.clone(), zeros, 1.0)
    softplus = F.softplus(logits.double()).view(-1)
    assert ((rows.view(-1).double() - softplus).abs() / softplus).max() < 3e-7
    grad = logits.clone()
    kernels.bernoulli_nll_(grad, zeros, 1.0)
    sigmoid = torch.sigmoid(logits.double()).view(-1)
    assert ((grad.view(-1).double() - sigmoid).abs() / sigmoid).max() < 3e-7


@needs_kernels
def test_bernoulli_lets_nan_and_inf_through_to_the_loss():
    for bad in (float("nan"), float("inf"), -float("inf")):
        logits = torch.zeros(1, 1, 2, 4)
        logits[0, 0, 0, 1] = bad
        rows = kernels.bernoulli_nll_(logits, torch.full((1, 2, 4), 0.5), 1.0)
        assert not torch.isfinite(rows[0, 0, 0]), bad
        assert torch.isfinite(rows[0, 0, 1])  # the other image is untouched
    assert torch.isfinite(logits[0, 0, 1]).all()


@needs_kernels
def test_bernoulli_does_not_depend_on_the_number_of_threads():
    logits, x = mnist_like(g=3, k=5, b=40)  # over the size at which it goes parallel
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            grad = logits.clone()
            results.append((kernels.bernoulli_nll_(grad, x, 0.1), grad))
    finally:
        torch.set_num_threads(before)
    for rows, grad in results[1:]:
        assert torch.equal(rows, results[0][0]) and torch.equal(grad, results[0][1])


@needs_kernels
def test_tanh_and_its_gradient_match_float64():
    gen = torch.Generator().manual_seed(0)
    a = torch.cat([torch.linspace(-30, 30, 600001), torch.randn(1000, generator=gen) * 1e-3])
    h = a.clone()
    assert kernels.tanh_(h)
    exact = torch.tanh(a.double())
    assert (h.double() - exact).abs().max() < 1.2e-7  # absolute, as 2 sigmoid(2a) - 1
    small = exact.abs() > 1e-30
    assert ((h.double() - exact).abs() / exact.abs())[small].max() < 2e-7
    edge = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-20])
    assert kernels.tanh_(edge)
    assert edge[0].isnan() and edge[1:3].tolist() == [1.0, -1.0]
    assert torch.equal(edge[3:], torch.tensor([0.0, -0.0, 1e-20])) and torch.signbit(edge[4])
    grad = torch.randn(a.shape, generator=gen)
    mine = grad.clone()
    assert kernels.tanh_grad_(mine, h)
    exact_grad = grad.double() * (1 - h.double() ** 2)
    torch_error = (grad * (1 - h * h) - exact_grad).abs().max()
    assert (mine - exact_grad).abs().max() <= 1.5 * torch_error  # with an FMA or without


@needs_kernels
def test_what_the_kernels_do_not_apply_to_is_left_alone():
    a = torch.randn(4, 6).mT  # not contiguous
    before = a.clone()
    assert not kernels.tanh_(a) and torch.equal(a, before)
    d = torch.randn(8, dtype=torch.float64)
    assert not kernels.tanh_grad_(d, d.clone())
    assert kernels.bernoulli_nll_(torch.randn(1, 1, 2, 3).double(), torch.rand(1, 2, 3), 1) is None
    with kernels.turned_off():
        assert not kernels.tanh_(torch.randn(3))
    assert kernels.tanh_(torch.randn(3))


@needs_kernels
@pytest.mark.parametrize("first", ["torch", "sklearn.cluster"])  # sklearn has its own libgomp
def test_loading_keeps_denormals_and_shares_torchs_openmp(first):
    code = (
        f"import {first}, torch, vaelab.models.kernels as k; before = k.openmp_runtimes();"
        "assert k._load()[0] is not None, k.kernels_status();"
        "assert (torch.tensor(1e-40) * 1.0).item() != 0.0;"
        "assert k.openmp_runtimes() == before, (before, k.openmp_runtimes());"
        "import os; torch.set_num_threads(2); torch.exp(torch.randn(10**6));"
        "threads = len(os.listdir('/proc/self/task'));"
        "k.tanh_(torch.randn(10**6)); k.bernoulli_nll_(torch.randn(1, 5, 100, 784),"
        " torch.rand(1, 100, 784), 0.1);"
        "assert len(os.listdir('/proc/self/task')) == threads, 'a second thread pool';"
        "print(sum('/torch/' in path for path in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "1"


def test_openmp_runtimes_are_read_from_the_maps():
    maps = (
        "7f0-7f1 r-xp 00000000 08:01 12 /venv/torch/lib/libgomp.so.1\n"
        "7f1-7f2 r--p 00010000 08:01 12 /venv/torch/lib/libgomp.so.1\n"
        "7f2-7f3 r-xp 00000000 08:01 13 /usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0\n"
        "7f3-7f4 rw-p 00000000 00:00 0 \n"
        "7f4-7f5 r-xp 00000000 08:01 14 /venv/torch/lib/libtorch_cpu.so\n"
    )
    assert kernels.openmp_runtimes(maps) == [
        "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
        "/venv/torch/lib/libgomp.so.1",
    ]
    assert kernels.openmp_runtimes(maps.splitlines()[0]) == ["/venv/torch/lib/libgomp.so.1"]


def run_status(tmp_path, **env):
    code = "import vaelab.models.kernels as k; print(k.kernels_status())"
    full = {**os.environ, "VAELAB_KERNEL_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full
    ).stdout.strip()


@needs_kernels
def test_built_once_into_the_cache_then_reused(tmp_path):
    first = run_status(tmp_path)
    assert first.startswith("fused C kernels")
    (built,) = (tmp_path / "cache").glob("kernels-*.so")
    stamp = built.stat().st_mtime_ns
    assert run_status(tmp_path) == first
    assert built.stat().st_mtime_ns == stamp
    assert not list((tmp_path / "cache").glob(".*tmp"))


def test_without_a_compiler_or_when_off_the_step_uses_torch_ops(tmp_path):
    missing = run_status(tmp_path, CC=str(tmp_path / "no-such-cc"))
    assert missing.startswith("torch ops: the C kernels did not build")
    assert run_status(tmp_path, VAELAB_KERNELS="off") == "torch ops: VAELAB_KERNELS is off"
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: fatal error: out of memory' >&2\nexit 1\n")
    failing.chmod(0o755)
    assert "out of memory" in run_status(tmp_path, CC=str(failing))
    assert not list(Path(tmp_path / "cache").glob("*.so"))


def latent_reference(heads, eps, dz, c):
    """float64 z, std, d heads and per-image KL, as `stacked` computes them with torch ops;
    c holds each member's KL weight per image."""
    h, e, d = heads.double(), eps.double(), dz.double()
    c = torch.tensor(c, dtype=torch.float64).view(-1, 1, 1)
    z_dim = e.shape[-1]
    mu, ln_var = h[..., :z_dim], h[..., z_dim:]
    std, var = (0.5 * ln_var).exp(), ln_var.exp()
    z = mu.unsqueeze(1) + e * std.unsqueeze(1)
    d_mu = d.sum(1) + c * mu
    d_ln_var = 0.5 * std * (d * e).sum(1) + 0.5 * c * (var - 1)
    kl = 0.5 * (mu.square() + var - ln_var - 1).sum(-1)
    return z, std, torch.cat([d_mu, d_ln_var], -1), kl


@needs_kernels
def test_latent_sample_gradient_and_kl_match_float64():
    gen = torch.Generator().manual_seed(1)
    g, k, b, z = 3, 5, 7, 6
    heads = torch.randn(g, b, 2 * z, generator=gen) * 3
    heads[0, 0, z : z + 4] = torch.tensor([-200.0, 200.0, 170.0, -170.0])  # ln_var far out
    eps, dz = torch.randn(g, k, b, z, generator=gen), torch.randn(g, k, b, z, generator=gen)
    c = [0.3, 0.05, 1.7]  # each member its own KL weight (a sweep of C in one group)
    z_ref, std_ref, d_ref, kl_ref = latent_reference(heads, eps, dz, c)
    sample, std = kernels.latent_sample(heads, eps)
    d_heads, kl = kernels.latent_grad(heads, eps, std, dz, c)
    # e^-100 is subnormal: 0 here; e^100 overflows fp32 as it does for torch.exp
    assert std[0, 0, :2].tolist() == [0.0, float("inf")]
    assert ((std[0, 0, 2:4].double() - std_ref[0, 0, 2:4]) / std_ref[0, 0, 2:4]).abs().max() < 2e-7
    assert ((std.double() - std_ref).abs() / std_ref.abs().clamp(min=1e-30))[1:].max() < 2e-7
    torch.testing.assert_close(sample[1:].double(), z_ref[1:], rtol=3e-7, atol=1e-6)
    torch.testing.assert_close(d_heads[1:].double(), d_ref[1:], rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(kl[1:].double(), kl_ref[1:], rtol=1e-6, atol=1e-5)
    padded, eps, dz = heads[1:].clone(), eps[1:].clone(), dz[1:].clone()
    padded[..., z - 2 : z] = 0.0  # a padded unit: mu = ln_var = 0, no noise, no gradient
    padded[..., 2 * z - 2 :] = 0.0
    eps[..., z - 2 :] = 0.0
    dz[..., z - 2 :] = 0.0
    sample, std = kernels.latent_sample(padded, eps)
    d_heads, kl = kernels.latent_grad(padded, eps, std, dz, c[1:])
    assert (sample[..., z - 2 :] == 0).all() and (d_heads[..., z - 2 : z] == 0).all()
    assert (d_heads[..., 2 * z - 2 :] == 0).all()
    kl_without = latent_reference(
        padded[..., [0, 1, 2, 3, 6, 7, 8, 9]], eps[..., :4], dz[..., :4], c[1:]
    )[3]
    torch.testing.assert_close(kl.double(), kl_without, rtol=1e-6, atol=1e-5)


@needs_kernels
@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_training_with_the_kernels_equals_training_with_torch_ops(kind, prototype_mnist, tmp_path):
    cfg = config(kind, z=3)
    data = TensorData.from_mnist(prototype_mnist, cfg)
    train(cfg, data, tmp_path / "kernels")
    with kernels.turned_off():
        train(cfg, data, tmp_path / "ops")
    fused, ops = weights(tmp_path / "kernels"), weights(tmp_path / "ops")
    assert max_diff(fused, ops) <= TOLERANCE and share_beyond(fused, ops, TYPICAL) < 0.01
    assert max_diff(fused, ops) > 0  # two paths, not one path run twice
    losses = [[r["loss"] for r in read_metrics(tmp_path / p)] for p in ("kernels", "ops")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_train_says_what_the_step_runs_on(tiny_mnist):
    assert start_lines("cpu", tiny_mnist, 20)[0] == f"device: cpu ({kernels.kernels_status()})"
    assert start_lines("cpu", tiny_mnist, 20, training=False)[0] == "device: cpu"
    assert start_lines("cuda:0", tiny_mnist, 20)[0] == "device: cuda:0"


def test_the_step_is_named_per_device():
    assert kernels.step_for("cpu") == kernels.kernels_status()
    assert kernels.step_for(torch.device("cuda", 0)) == "torch ops"


@needs_kernels
def test_softplus_and_its_slope_match_float64():
    a = torch.cat([torch.linspace(-79, 79, 15801), torch.tensor([0.0, -0.0, 1e-30, -1e-30])])
    h, slope = kernels.softplus(a)
    exact = F.softplus(a.double())
    assert ((h.double() - exact).abs() / exact).max() < 3e-7
    assert ((slope.double() - torch.sigmoid(a.double())).abs()).max() < 2e-7  # a few ulp of 1
    far = torch.tensor([-150.0, -90.0, 90.0, 150.0, float("nan")])
    h, slope = kernels.softplus(far)
    assert h[:2].max() < 1e-34 and slope[:2].max() < 1e-34  # e^a below float rounding of 1
    assert h[2:4].tolist() == [90.0, 150.0] and slope[2:4].tolist() == [1.0, 1.0]
    assert h[4].isnan() and slope[4].isnan()


@needs_kernels
def test_the_softplus_layer_takes_the_kernel_only_for_training_and_equals_torchs():
    from vaelab.models.networks import softplus

    a = (torch.randn(3, 40, 70, generator=torch.Generator().manual_seed(0)) * 8).requires_grad_()
    upstream = torch.randn(3, 40, 70)
    h = softplus(a)
    assert type(h.grad_fn).__name__ == "_SoftplusBackward"
    (grad,) = torch.autograd.grad((h * upstream).sum(), a)
    exact = F.softplus(a.double())
    (oracle,) = torch.autograd.grad((exact * upstream.double()).sum(), a)  # autograd, float64
    torch.testing.assert_close(h.double(), exact, rtol=3e-7, atol=0.0)
    torch.testing.assert_close(grad.double(), oracle.double(), rtol=1e-6, atol=1e-7)
    with torch.no_grad():  # evaluation: torch's own softplus, bit for bit
        assert torch.equal(softplus(a), F.softplus(a))
    assert softplus(a.double()).grad_fn.name() == "SoftplusBackward0"  # float64: torch's


@needs_kernels
@pytest.mark.parametrize("shape", [(5, 784), (3, 5, 784), (2, 10, 5, 784)])
def test_the_trained_bernoulli_nll_takes_the_kernel_and_equals_float64(shape, monkeypatch):
    from vaelab.models.losses import bernoulli_nll

    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(shape, generator=gen) * 6).requires_grad_()
    x = torch.rand(shape[-2:], generator=gen)
    upstream = torch.randn(shape[:-1], generator=gen)
    calls, real = [], kernels.bernoulli_nll_with_grad
    monkeypatch.setattr(kernels, "bernoulli_nll_with_grad", lambda *a: calls.append(1) or real(*a))
    rows = bernoulli_nll(logits, x)
    assert calls and rows.shape == shape[:-1]
    (grad,) = torch.autograd.grad((rows * upstream).sum(), logits)
    lg = logits.detach().double()
    exact = F.binary_cross_entropy_with_logits(lg, x.double().expand_as(lg), reduction="none")
    torch.testing.assert_close(rows.double(), exact.sum(-1), rtol=1e-6, atol=1e-4)
    oracle = (torch.sigmoid(lg) - x.double()) * upstream.double().unsqueeze(-1)
    torch.testing.assert_close(grad.double(), oracle, rtol=1e-6, atol=1e-6)
