"""Both training steps implement one interface (`training.step.Step`): on the article's
models, the fused step and autograd on the models' own modules give the same terms and
the same gradients into the flat buffer, from the same batch and the same noise."""

import pytest
import torch

from vaelab.core.config import ModelConfig
from vaelab.models.kinds import build_model
from vaelab.training.autograd_step import AutogradStep, MemberLayout
from vaelab.training.stacked import Stack
from vaelab.training.step import Batch, FusedStep


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_the_fused_and_the_autograd_step_agree(kind):
    configs = [ModelConfig(kind=kind, latent=z, hidden=16, embed=8) for z in (2, 2)]
    stack, layout = Stack(configs), MemberLayout(configs)
    fused_params, auto_params = torch.zeros(stack.numel), torch.zeros(layout.numel)
    for g, cfg in enumerate(configs):
        torch.manual_seed(g)
        state = build_model(cfg).state_dict()
        for flat, views in ((fused_params, stack.member), (auto_params, layout.member)):
            for name, view in views(flat, g).items():
                view.copy_(state[name])
    fused_grad, auto_grad = torch.zeros_like(fused_params), torch.zeros_like(auto_params)
    kl, k = (0.5, 1.0), 3

    def generators():
        return [torch.Generator().manual_seed(10 + g) for g in range(2)]

    fused = FusedStep(stack, fused_params, fused_grad, kl, k, generators(), torch.device("cpu"))
    auto = AutogradStep(
        layout, configs, auto_params, auto_grad, "bernoulli",
        kl_weights=kl, n_samples=k, ce_weights=(0.0, 0.0), generators=generators(),
    )  # fmt: skip
    torch.manual_seed(5)
    x = torch.rand(2, 6, 784)
    y = torch.tensor([[0, 1, -1, 3, 4, 5], [9, -1, 7, 6, 5, 4]]) if kind == "cvae" else None
    batch = Batch(x, y)
    found, expected = fused(batch), auto(batch)
    assert found.shape == (2, 3)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-4)
    for g in range(2):
        got, want = stack.member(fused_grad, g), layout.member(auto_grad, g)
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5)
        assert any(bool(v.abs().sum() > 0) for v in want.values())
