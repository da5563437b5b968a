import math

import pytest
import torch

from advnets.losses import (discriminator_loss, discriminator_loss_logit_grads, generator_loss,
                            generator_loss_logit_grad, minimax_generator_loss, nonsaturating_generator_loss,
                            value_function)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_value_function_by_hand():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    by_hand = (math.log(sig(2.0)) + math.log(sig(-1.0))) / 2 + \
        (math.log(1 - sig(0.5)) + math.log(1 - sig(-3.0))) / 2
    assert value_function(real, fake).item() == pytest.approx(by_hand, rel=1e-6)
    assert discriminator_loss(real, fake).item() == pytest.approx(-by_hand / 2, rel=1e-6)


def test_d_equal_half_gives_minus_log4():
    zeros = torch.zeros(5)
    assert value_function(zeros, zeros).item() == pytest.approx(-math.log(4), rel=1e-7)


def test_generator_losses_by_hand():
    fake = torch.tensor([0.5, -3.0, 4.0])
    minimax = sum(math.log(1 - sig(v)) for v in fake.tolist()) / 3
    nonsat = -sum(math.log(sig(v)) for v in fake.tolist()) / 3
    assert minimax_generator_loss(fake).item() == pytest.approx(minimax, rel=1e-6)
    assert nonsaturating_generator_loss(fake).item() == pytest.approx(nonsat, rel=1e-6)
    assert generator_loss("minimax", fake).item() == pytest.approx(minimax, rel=1e-6)
    with pytest.raises(ValueError):
        generator_loss("wasserstein", fake)


def test_losses_finite_for_extreme_logits():
    # log(sigmoid(x)) would give -inf here; softplus from logits stays exact.
    fake = torch.tensor([-200.0, 200.0])
    assert nonsaturating_generator_loss(fake).item() == pytest.approx(100.0, rel=1e-6)
    assert torch.isfinite(minimax_generator_loss(fake))
    assert discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0])).item() == pytest.approx(200.0)


def test_saturation_of_minimax_gradient():
    # Section 3: when D confidently rejects samples (logit -8), the minimax gradient nearly vanishes.
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(minimax_generator_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(nonsaturating_generator_loss(fake), fake)
    assert abs(g_mm.item()) == pytest.approx(sig(-8.0), rel=1e-5)
    assert abs(g_ns.item()) == pytest.approx(1 - sig(-8.0), rel=1e-5)
    assert abs(g_ns.item()) > 1000 * abs(g_mm.item())


@pytest.mark.parametrize("kind", ["minimax", "non-saturating"])
def test_logit_gradients_match_autograd(kind):
    real = torch.randn(7, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(7, dtype=torch.float64, requires_grad=True)
    dr, df = torch.autograd.grad(discriminator_loss(real, fake), (real, fake))
    mr, mf = discriminator_loss_logit_grads(real.detach(), fake.detach())
    assert torch.allclose(dr, mr) and torch.allclose(df, mf)
    (gf,) = torch.autograd.grad(generator_loss(kind, fake), fake)
    assert torch.allclose(gf, generator_loss_logit_grad(kind, fake.detach()))
