"""Several models of one kind as one computation: stacked weights in one flat buffer.

The members of a stack share their kind and layer sizes; their latent sizes may differ.
Each is padded to the stack's largest with zero weights and zero noise: a padded unit then
outputs exactly 0, adds exactly 0 to the KL and gets exactly 0 gradient, so it stays 0
under Adam and every member computes what it would alone, up to the rounding of longer sums.

Forward and backward of these small MLPs are written out by hand (checked against autograd
of `losses.objective` in the tests): per step that is a few batched matmuls and a few
in-place elementwise passes instead of ~40 autograd nodes, and Adam is one fused call over
one flat buffer, whatever the number of members.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaelab import kernels
from vaelab.config import ModelConfig
from vaelab.models import build_model

LOGIT_LIMIT = 80.0  # e^80 fits in fp32; above it softplus(l) = l to within e^-80


class Stack:
    """The layout of G members' parameters as (G, ...) views of one flat buffer."""

    def __init__(self, models: list[ModelConfig]) -> None:
        m = models[0]
        self.kind, self.size = m.kind, len(models)
        self.latents = [c.latent for c in models]
        self.zmax, self.hidden, self.input_dim = max(self.latents), m.hidden, m.input_dim
        self.variational, self.labels = m.kind != "ae", m.kind == "cvae"
        width = m.hidden + (m.embed if self.labels else 0)
        heads = (2 if self.variational else 1) * self.zmax  # mu rows, then ln_var rows
        self.shapes: dict[str, tuple[int, ...]] = {
            "w1": (m.hidden, m.input_dim),
            "b1": (m.hidden,),
            "wh": (heads, width),
            "bh": (heads,),
            "w3": (m.hidden, self.zmax),
            "b3": (m.hidden,),
            "w4": (m.input_dim, m.hidden),
            "b4": (m.input_dim,),
        }
        if self.labels:
            self.shapes |= {
                "e_enc": (m.n_labels, m.embed),
                "e_dec": (m.n_labels, m.embed),
                "w_lo": (m.input_dim, m.embed),
            }
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
        v, z, zmax = self.views(flat), self.latents[g], self.zmax
        out = {
            "enc_hidden.weight": v["w1"][g],
            "enc_hidden.bias": v["b1"][g],
            "enc_mu.weight": v["wh"][g, :z],
            "enc_mu.bias": v["bh"][g, :z],
            "enc_ln_var.weight": v["wh"][g, zmax : zmax + z],
            "enc_ln_var.bias": v["bh"][g, zmax : zmax + z],
            "dec_hidden.weight": v["w3"][g, :, :z],
            "dec_hidden.bias": v["b3"][g],
            "dec_out.weight": v["w4"][g],
            "dec_out.bias": v["b4"][g],
        }
        if self.labels:
            out |= {
                "enc_label.weight": v["e_enc"][g],
                "dec_label.weight": v["e_dec"][g],
                "dec_label_out.weight": v["w_lo"][g],
            }
        return {name: out[name] for name in self.names}


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
    """tanh in place: the fused kernel, else 2 sigmoid(2a) - 1 (on a CPU about 3x faster than
    torch.tanh). Both within 1.5e-7 of tanh; the gradient uses 1 - h^2 of the same h."""
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
    heads: Tensor, eps: Tensor, std: Tensor, dz: Tensor, c: float
) -> tuple[Tensor, Tensor]:
    """d loss / d heads (G, B, 2Z) given dz (G, k, B, Z), and the mean KL per member (G,)."""
    b = heads.shape[1]
    fused = kernels.latent_grad(heads, eps, std, dz, c)
    if fused is not None:
        d_heads, kl = fused
        return d_heads, kl.sum(1) / b
    zmax = eps.shape[-1]
    mu, ln_var = heads[..., :zmax], heads[..., zmax:]
    var = ln_var.exp()
    kl = 0.5 * (mu.square() + var - ln_var - 1.0).sum((1, 2)) / b  # (G,)
    d_mu = dz.sum(1).add_(mu, alpha=c)
    d_ln_var = (dz * eps).sum(1).mul_(std).mul_(0.5).add_(var.sub(1.0), alpha=0.5 * c)
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


def forward_backward(
    s: Stack,
    p: dict[str, Tensor],
    grad: dict[str, Tensor],
    x: Tensor,
    y: Tensor | None,
    eps: Tensor | None,
    kl_weight: float,
) -> Tensor:
    """Each member's objective on its batch and, into `grad`, its gradient.

    x (G, B, D) in [0, 1]; y (G, B) labels, -1 for none (CVAE only); eps (G, k, B, Z) noise,
    zero in padded dims (not for the AE). Returns (G, 3): loss, reconstruction, KL, as
    `losses.objective` defines them. `grad` is overwritten, padding included.
    """
    g, b, d = x.shape
    zmax = s.zmax
    h1 = _tanh_(torch.baddbmm(p["b1"].unsqueeze(1), x, p["w1"].mT))  # (G, B, H)
    hc, he, hy, known = h1, None, None, None
    if s.labels:
        known = (y >= 0).unsqueeze(-1).to(x.dtype)  # (G, B, 1)
        y = y.clamp(min=0)
        he = _tanh_(_embed(p["e_enc"], y).mul_(known))  # (G, B, E)
        hc = torch.cat([h1, he], dim=-1)  # (G, B, H + E)
    heads = torch.baddbmm(p["bh"].unsqueeze(1), hc, p["wh"].mT)  # (G, B, nZ)
    if s.variational:
        z, std = _sample(heads, eps)  # (G, k, B, Z), (G, B, Z)
    else:
        z = heads.unsqueeze(1)  # an AE's code is its mu
    k = z.shape[1]
    z = z.reshape(g, k * b, zmax)
    h3 = _tanh_(torch.baddbmm(p["b3"].unsqueeze(1), z, p["w3"].mT))  # (G, kB, H)
    logits = s.work("logits", x, (g, k * b, d))
    torch.baddbmm(p["b4"].unsqueeze(1), h3, p["w4"].mT, out=logits)  # (G, kB, D)
    if s.labels:
        hy = _tanh_(_embed(p["e_dec"], y).mul_(known))  # (G, B, E)
        logits.view(g, k, b, d).add_(torch.bmm(hy, p["w_lo"].mT).unsqueeze(1))

    nll, dl = _bernoulli(s, logits, x, k)
    reconstruction = nll / (k * b)

    torch.bmm(dl.mT, h3, out=grad["w4"])
    torch.sum(dl, 1, out=grad["b4"])
    if s.labels:
        dl_y = dl.view(g, k, b, d).sum(1)  # (G, B, D): the label's part is shared over k
        torch.bmm(dl_y.mT, hy, out=grad["w_lo"])
        d_hy = _tanh_grad(torch.bmm(dl_y, p["w_lo"]), hy).mul_(known)
        _embed_grad(grad["e_dec"], y, d_hy)
    da3 = _tanh_grad(torch.bmm(dl, p["w4"]), h3)  # (G, kB, H)
    torch.bmm(da3.mT, z, out=grad["w3"])
    torch.sum(da3, 1, out=grad["b3"])
    dz = torch.bmm(da3, p["w3"]).view(g, k, b, zmax)
    c = kl_weight / b
    if s.variational:
        d_heads, kl = _latent_grad(heads, eps, std, dz, c)  # (G, B, 2Z), (G,)
    else:
        kl = torch.zeros_like(reconstruction)
        d_heads = dz.sum(1)
    torch.bmm(d_heads.mT, hc, out=grad["wh"])
    torch.sum(d_heads, 1, out=grad["bh"])
    d_hc = torch.bmm(d_heads, p["wh"])  # (G, B, H + E)
    da1 = _tanh_grad(d_hc[..., : s.hidden], h1)
    torch.bmm(da1.mT, x, out=grad["w1"])
    torch.sum(da1, 1, out=grad["b1"])
    if s.labels:
        d_he = _tanh_grad(d_hc[..., s.hidden :], he).mul_(known)
        _embed_grad(grad["e_enc"], y, d_he)
    loss = reconstruction + kl_weight * kl if s.variational else reconstruction
    return torch.stack([loss, reconstruction, kl], dim=1)


class FlatAdam:
    """Adam over one flat buffer: one fused call per step for every member of a stack.

    Adam is elementwise, so on the stacked buffer it is exactly Adam on each member.
    """

    def __init__(self, params: Tensor, lr: float, betas: tuple[float, float], eps: float):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.grad = torch.zeros_like(params)
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.step_count = torch.zeros((), dtype=torch.float32, device=params.device)

    def step(self) -> None:
        self.step_count += 1
        torch._fused_adam_(
            [self.params],
            [self.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.step_count],
            amsgrad=False,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
        )

    def buffers(self) -> dict[str, Tensor]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}
