"""Several models of one kind as one computation: stacked weights in one flat buffer.

The members of a stack share their kind and layer sizes; their latent sizes may differ.
Each is padded to the stack's largest with zero weights and zero noise: a padded unit then
outputs exactly 0, adds exactly 0 to the KL and gets exactly 0 gradient, so it stays 0
under Adam and every member computes what it would alone, up to the rounding of longer sums.

The layout is derived from each kind's layer description (`models.spec`). Forward and
backward are written out by hand for the article's AE, VAE and CVAE (the record's `fused`: one tanh
hidden layer, the label after it; checked against autograd of `losses.objective` in the
tests; every other model trains by `training.autograd_step`): per step that
is a few batched matmuls and a few in-place elementwise passes instead of ~40 autograd nodes,
and Adam is one fused call over one flat buffer, whatever the number of members. The AE's
loss is the Bernoulli NLL or the article's mean squared error (`losses.mse_objective`), and
Adam is torch's or Chainer's (the same fused call, its epsilon rescaled each step).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from vaelab.core.config import ModelConfig
from vaelab.models import kernels, kinds, spec
from vaelab.models.kinds import build_model

LOGIT_LIMIT = 80.0  # e^80 fits in fp32; above it softplus(l) = l to within e^-80


class Stack:
    """The layout of G members' parameters as (G, ...) views of one flat buffer (a
    `training.step.Layout`).

    Derived from the kind's layer description (`models.spec.layers`) at the stack's largest
    latent size: one buffer per layer, or per `stack` of layers (the VAE's mu and ln_var
    heads, one block of rows each), named "<layer or stack>.weight" / ".bias"."""

    def __init__(self, models: list[ModelConfig], ae_loss: str = "bernoulli") -> None:
        m = models[0]
        self.kind, self.size = kinds.record(m.kind), len(models)
        self.mse = self.kind.role == "ae" and ae_loss == "mse"  # the article's AE loss
        self.latents = [c.latent for c in models]
        self.zmax, self.hidden, self.input_dim = max(self.latents), m.hidden[0], m.input_dim
        self.variational, self.labels = self.kind.variational, self.kind.labels
        self.configs = models
        self.segments = None  # each buffer holds every member's rows: no member's own span
        padded = dataclasses.replace(m, latent=self.zmax)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._place: dict[str, tuple[str, int]] = {}  # layer -> (buffer key, first row)
        self.traits = self.kind.traits
        for layer in spec.layers(padded, self.traits):
            key = layer.stack or layer.name
            rows, cols = spec.weight_shape(layer, padded, self.traits)
            first = self.shapes.get(f"{key}.weight", (0, cols))[0]
            self.shapes[f"{key}.weight"] = (first + rows, cols)
            if layer.bias:
                self.shapes[f"{key}.bias"] = (first + rows,)
            self._place[layer.name] = (key, first)
        self.numel = sum(self.size * math.prod(s) for s in self.shapes.values())
        # a member's parameters in its own model's order: the checkpoint's optim.<i> index
        self.names = [n for n, _ in build_model(m).named_parameters()]
        self._work: dict[tuple[str, tuple[int, ...]], Tensor] = {}

    def work(self, name: str, like: Tensor, shape: tuple[int, ...]) -> Tensor:
        """A scratch buffer kept across steps: the big per-step temporaries would otherwise
        be fresh allocations, and on a CPU fresh pages cost as much as the arithmetic."""
        key = (name, shape)
        if key not in self._work or self._work[key].device != like.device:
            self._work[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return self._work[key]

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for name, shape in self.shapes.items():
            n = self.size * math.prod(shape)
            out[name] = flat[start : start + n].view(self.size, *shape)
            start += n
        return out

    def member(self, flat: Tensor, g: int) -> dict[str, Tensor]:
        """Member g's slices of `flat` under its own model's state-dict names (views)."""
        views, cfg = self.views(flat), self.configs[g]
        out = {}
        for layer in spec.layers(cfg, self.traits):
            key, first = self._place[layer.name]
            rows, cols = spec.weight_shape(layer, cfg, self.traits)
            out[f"{layer.name}.weight"] = views[f"{key}.weight"][g, first : first + rows, :cols]
            if layer.bias:
                out[f"{layer.name}.bias"] = views[f"{key}.bias"][g, first : first + rows]
        return {name: out[name] for name in self.names}

    def padded(self, flat: Tensor) -> dict[str, Tensor]:
        """Every member's parameters at the stack's largest latent size, under the padded
        model's state-dict names: (G, ...) views, for a padded module under vmap."""
        views, cfg = self.views(flat), dataclasses.replace(self.configs[0], latent=self.zmax)
        out = {}
        for layer in spec.layers(cfg, self.traits):
            key, first = self._place[layer.name]
            rows, _ = spec.weight_shape(layer, cfg, self.traits)
            out[f"{layer.name}.weight"] = views[f"{key}.weight"][:, first : first + rows]
            if layer.bias:
                out[f"{layer.name}.bias"] = views[f"{key}.bias"][:, first : first + rows]
        return out


def _embed(table: Tensor, index: Tensor) -> Tensor:
    """Rows of each member's table: (G, L, E), (G, B) -> (G, B, E)."""
    g, n_labels, e = table.shape
    offset = torch.arange(g, device=index.device).unsqueeze(1) * n_labels
    return (
        table.reshape(g * n_labels, e).index_select(0, (index + offset).reshape(-1)).view(g, -1, e)
    )


def _embed_grad(out: Tensor, index: Tensor, grad: Tensor) -> None:
    """out[g, index[g, b]] += grad[g, b] for every b, out (G, L, E) overwritten."""
    g, n_labels, e = out.shape
    offset = torch.arange(g, device=index.device).unsqueeze(1) * n_labels
    out.zero_()
    out.view(g * n_labels, e).index_add_(0, (index + offset).reshape(-1), grad.reshape(-1, e))


def _tanh_(a: Tensor) -> Tensor:
    """tanh in place: the fused kernel, else 2 sigmoid(2a) - 1 (on a CPU faster than torch.tanh:
    `benchmarks/grid_speed.py`, row "tanh", times the two). Both within 1.5e-7 of tanh; the
    gradient uses 1 - h^2 of the same h."""
    if kernels.tanh_(a):
        return a
    return a.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)


def _tanh_grad(grad: Tensor, h: Tensor) -> Tensor:
    """d/da of tanh(a) = h, applied in place: grad * (1 - h^2)."""
    if kernels.tanh_grad_(grad, h):
        return grad
    return grad.mul_(h.square().neg_().add_(1.0))


def _sample(heads: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
    """z = mu + eps * exp(ln_var / 2) for each of the k draws, and that std."""
    fused = kernels.latent_sample(heads, eps)
    if fused is not None:
        return fused
    zmax = eps.shape[-1]
    std = heads[..., zmax:].mul(0.5).exp_()  # (G, B, Z)
    return torch.addcmul(heads[..., :zmax].unsqueeze(1), eps, std.unsqueeze(1)), std


def _latent_grad(
    heads: Tensor, eps: Tensor, std: Tensor, dz: Tensor, weights: tuple[float, ...]
) -> tuple[Tensor, Tensor]:
    """d loss / d heads (G, B, 2Z) given dz (G, k, B, Z) and each member's KL weight, and the
    mean KL per member (G,)."""
    b = heads.shape[1]
    fused = kernels.latent_grad(heads, eps, std, dz, [w / b for w in weights])
    if fused is not None:
        d_heads, kl = fused
        return d_heads, kl.sum(1) / b
    zmax = eps.shape[-1]
    mu, ln_var = heads[..., :zmax], heads[..., zmax:]
    var = ln_var.exp()
    kl = 0.5 * (mu.square() + var - ln_var - 1.0).sum((1, 2)) / b  # (G,)
    d_mu, d_ln_var = dz.sum(1), (dz * eps).sum(1).mul_(std).mul_(0.5)
    if len(set(weights)) == 1:  # one weight: a scalar, as a group of one computes it
        c = weights[0] / b
        d_mu.add_(mu, alpha=c)
        d_ln_var.add_(var.sub(1.0), alpha=0.5 * c)
    else:
        c = torch.tensor([w / b for w in weights], dtype=heads.dtype, device=heads.device)
        c = c.view(-1, 1, 1)
        d_mu.add_(mu * c)
        d_ln_var.add_(var.sub(1.0).mul_(0.5 * c))
    return torch.cat([d_mu, d_ln_var], dim=-1), kl


def _bernoulli(s: Stack, logits: Tensor, x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Summed Bernoulli NLL per member (G,) and d mean NLL / d logits (G, kB, D).

    sum_d softplus(l) - x l, and (sigmoid(l) - x) / kB; `logits` is overwritten."""
    g, b, d = x.shape
    scale = 1.0 / (k * b)
    rows = kernels.bernoulli_nll_(logits.view(g, k, b, d), x, scale)
    if rows is not None:  # one fused pass; logits now hold the gradient
        return rows.view(g, -1).sum(1), logits
    # one exp per element serves loss and gradient
    xl = torch.bmm(logits.view(g, k, b * d), x.reshape(g, b * d, 1)).sum((1, 2))  # (G,)
    nll = -xl
    work = s.work("exp", x, (g, k * b, d))
    if logits.is_cuda or logits.max() > LOGIT_LIMIT:  # a check would cost a sync on a GPU
        nll += (logits - LOGIT_LIMIT).clamp_(min=0).sum((1, 2))
        exp = torch.clamp_max(logits, LOGIT_LIMIT, out=work).exp_()  # (G, kB, D)
    else:
        exp = torch.exp(logits, out=work)
    nll += torch.log1p(exp, out=logits).sum((1, 2))
    # (sigmoid(l) - x) / kB = ((1 - x) - 1 / (1 + e^l)) / kB
    inverse = exp.add_(1.0).reciprocal_().view(g, k, b, d)
    dl = torch.add(x.neg().add_(1.0).mul_(scale).unsqueeze(1), inverse, alpha=-scale, out=inverse)
    return nll, dl.view(g, k * b, d)


def _mse(logits: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """The article's AE loss per member (G,), sum_bd (sigmoid(l) - x)^2 / (B^2 D), and its
    gradient d loss / d logits = 2 (p - x) p (1 - p) / (B^2 D) (G, B, D); `logits` is
    overwritten with that gradient."""
    g, b, d = x.shape
    scale = 1.0 / (b * b * d)
    p = logits.sigmoid_()  # (G, B, D)
    diff = torch.sub(p, x)
    loss = diff.square().sum((1, 2)).mul_(scale)
    return loss, p.sub_(p.square()).mul_(diff).mul_(2.0 * scale)


def forward_backward(
    s: Stack,
    p: dict[str, Tensor],
    grad: dict[str, Tensor],
    x: Tensor,
    y: Tensor | None,
    eps: Tensor | None,
    kl_weight: float | Sequence[float],
) -> Tensor:
    """Each member's objective on its batch and, into `grad`, its gradient.

    x (G, B, D) in [0, 1]; y (G, B) labels, -1 for none (CVAE only); eps (G, k, B, Z) noise,
    zero in padded dims (not for the AE); kl_weight: one C for all or one per member (a sweep
    of C trains in one group). Returns (G, 3): loss, reconstruction, KL, as
    `losses.objective` defines them. `grad` is overwritten, padding included.
    """
    g, b, d = x.shape
    zmax = s.zmax
    weights = (float(kl_weight),) * g if isinstance(kl_weight, int | float) else tuple(kl_weight)
    h1 = _tanh_(
        torch.baddbmm(p["enc_hidden.bias"].unsqueeze(1), x, p["enc_hidden.weight"].mT)
    )  # (G, B, H)
    hc, he, hy, known = h1, None, None, None
    if s.labels:
        known = (y >= 0).unsqueeze(-1).to(x.dtype)  # (G, B, 1)
        y = y.clamp(min=0)
        he = _tanh_(_embed(p["enc_label.weight"], y).mul_(known))  # (G, B, E)
        hc = torch.cat([h1, he], dim=-1)  # (G, B, H + E)
    heads = torch.baddbmm(p["heads.bias"].unsqueeze(1), hc, p["heads.weight"].mT)  # (G, B, nZ)
    if s.variational:
        z, std = _sample(heads, eps)  # (G, k, B, Z), (G, B, Z)
    else:
        z = heads.unsqueeze(1)  # an AE's code is its mu
    k = z.shape[1]
    z = z.reshape(g, k * b, zmax)
    h3 = _tanh_(
        torch.baddbmm(p["dec_hidden.bias"].unsqueeze(1), z, p["dec_hidden.weight"].mT)
    )  # (G, kB, H)
    logits = s.work("logits", x, (g, k * b, d))
    torch.baddbmm(
        p["dec_out.bias"].unsqueeze(1), h3, p["dec_out.weight"].mT, out=logits
    )  # (G, kB, D)
    if s.labels:
        hy = _tanh_(_embed(p["dec_label.weight"], y).mul_(known))  # (G, B, E)
        logits.view(g, k, b, d).add_(torch.bmm(hy, p["dec_label_out.weight"].mT).unsqueeze(1))

    if s.mse:  # the AE's objective is the mean squared error itself
        reconstruction, dl = _mse(logits, x)
    else:
        nll, dl = _bernoulli(s, logits, x, k)
        reconstruction = nll / (k * b)

    torch.bmm(dl.mT, h3, out=grad["dec_out.weight"])
    torch.sum(dl, 1, out=grad["dec_out.bias"])
    if s.labels:
        dl_y = dl.view(g, k, b, d).sum(1)  # (G, B, D): the label's part is shared over k
        torch.bmm(dl_y.mT, hy, out=grad["dec_label_out.weight"])
        d_hy = _tanh_grad(torch.bmm(dl_y, p["dec_label_out.weight"]), hy).mul_(known)
        _embed_grad(grad["dec_label.weight"], y, d_hy)
    da3 = _tanh_grad(torch.bmm(dl, p["dec_out.weight"]), h3)  # (G, kB, H)
    torch.bmm(da3.mT, z, out=grad["dec_hidden.weight"])
    torch.sum(da3, 1, out=grad["dec_hidden.bias"])
    dz = torch.bmm(da3, p["dec_hidden.weight"]).view(g, k, b, zmax)
    if s.variational:
        d_heads, kl = _latent_grad(heads, eps, std, dz, weights)  # (G, B, 2Z), (G,)
    else:
        kl = torch.zeros_like(reconstruction)
        d_heads = dz.sum(1)
    torch.bmm(d_heads.mT, hc, out=grad["heads.weight"])
    torch.sum(d_heads, 1, out=grad["heads.bias"])
    d_hc = torch.bmm(d_heads, p["heads.weight"])  # (G, B, H + E)
    da1 = _tanh_grad(d_hc[..., : s.hidden], h1)
    torch.bmm(da1.mT, x, out=grad["enc_hidden.weight"])
    torch.sum(da1, 1, out=grad["enc_hidden.bias"])
    if s.labels:
        d_he = _tanh_grad(d_hc[..., s.hidden :], he).mul_(known)
        _embed_grad(grad["enc_label.weight"], y, d_he)
    if not s.variational:
        loss = reconstruction
    elif len(set(weights)) == 1:
        loss = reconstruction + weights[0] * kl
    else:
        loss = reconstruction + torch.tensor(weights, dtype=kl.dtype, device=kl.device) * kl
    return torch.stack([loss, reconstruction, kl], dim=1)


class FlatAdam:
    """Adam over one flat buffer: one fused call per step for every member of a stack.

    Adam is elementwise, so on the stacked buffer it is exactly Adam on each member.
    torch's Adam steps p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps); Chainer's
    (`chainer=True`, the article's) p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps).
    The second is the first with eps_t = eps / sqrt(1 - b2^t) at step t, so one fused call
    serves both.
    """

    def __init__(
        self,
        params: Tensor,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        segments: Sequence[tuple[int, int]] | None = None,
        chainer: bool = False,
    ):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.chainer = chainer
        self.grad = torch.zeros_like(params)
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.step_count = torch.zeros((), dtype=torch.float32, device=params.device)
        # [start, end) of each member: one tensor each in the one fused call, so a member's
        # floats do not depend on the others beside it (the whole buffer when not given)
        self.segments = list(segments or [(0, params.numel())])
        self.t = 0  # the step count, as a Python number

    def _parts(self, buffer: Tensor) -> list[Tensor]:
        return [buffer[start:end] for start, end in self.segments]

    def load_step(self, count: Tensor) -> None:
        """Restore the step count of a checkpoint."""
        self.step_count.copy_(count)
        self.t = int(count.item())

    def step_eps(self, t: int) -> float:
        """The epsilon torch's update needs at step t to make the update asked for."""
        if not self.chainer:
            return self.eps
        return self.eps / math.sqrt(1.0 - self.betas[1] ** t)

    def step(self) -> None:
        self.step_count += 1
        self.t += 1
        torch._fused_adam_(
            self._parts(self.params),
            self._parts(self.grad),
            self._parts(self.exp_avg),
            self._parts(self.exp_avg_sq),
            [],
            [self.step_count] * len(self.segments),
            amsgrad=False,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.step_eps(self.t),
            maximize=False,
        )

    def buffers(self) -> dict[str, Tensor]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}
