"""The fused simultaneous step must give exactly autograd's gradients; the Algorithm 1 steps only touch their
own player's gradients."""
import pytest
import torch

from advnets.losses import nonsaturating_generator_loss

from advnets.training.step_fused import simultaneous_grads_fused, supports_fused
from advnets.training.step_alternating import discriminator_grads, generator_grads
from tests.training.oracle import simultaneous_grads_two_pass


def _grads(*nets):
    return [p.grad.clone() for n in nets for p in n.parameters()]


@pytest.mark.parametrize("kind", ["non-saturating", "minimax"])
def test_fused_equals_autograd(kind, small_nets):
    g, d, gen = small_nets()
    x = torch.rand(10, 64, generator=gen, dtype=torch.float64)
    z = torch.rand(10, 100, generator=gen, dtype=torch.float64) * 3.4 - 1.7
    masks = [m.double() for m in d.draw_masks(20, gen)]
    fused = simultaneous_grads_fused(g, d, x, z, masks, kind)
    a = _grads(g, d)
    auto = simultaneous_grads_two_pass(g, d, x, z, masks, kind)
    b = _grads(g, d)
    assert supports_fused(g, d)
    for ga, gb in zip(a, b):
        assert gb.abs().max() > 0
        assert torch.allclose(ga, gb, rtol=1e-10, atol=1e-14)
    for s in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert getattr(fused, s).item() == pytest.approx(getattr(auto, s).item(), rel=1e-12)


def test_fused_without_dropout_equals_autograd(small_nets):
    g, d, gen = small_nets({"model.discriminator_input_include_prob": 1.0, "model.discriminator_input_scale": 1.0,
                       "model.discriminator_hidden_include_prob": 1.0, "model.discriminator_hidden_scale": 1.0})
    x = torch.rand(6, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(6, 100, generator=gen, dtype=torch.float64)
    masks = d.draw_masks(12, gen)
    assert all(m is None for m in masks)
    simultaneous_grads_fused(g, d, x, z, masks, "non-saturating")
    a = _grads(g, d)
    simultaneous_grads_two_pass(g, d, x, z, masks, "non-saturating")
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-14) for u, v in zip(a, _grads(g, d)))


def test_d_step_and_g_step_touch_only_their_player(small_nets):
    g, d, gen = small_nets()
    x = torch.rand(8, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(8, 100, generator=gen, dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(16, gen)]
    discriminator_grads(g, d, x, z, masks)
    assert all(p.grad is None for p in g.parameters())
    d_before = _grads(d)
    stats = generator_grads(g, d, z, [m[:8] for m in masks], "non-saturating")
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in g.parameters())
    assert all(torch.equal(u, v) for u, v in zip(d_before, _grads(d)))   # D's grads untouched by the G step
    logits = d(g(z), [m[:8] for m in masks])                              # what the G step saw
    assert torch.allclose(stats.g_loss, nonsaturating_generator_loss(logits), rtol=1e-12)
    assert torch.allclose(stats.d_fake, torch.sigmoid(logits).mean(), rtol=1e-12)


def test_g_step_equals_fused_g_gradient(small_nets):
    # The G half of the simultaneous update is the G step of Algorithm 1 on the same noise and masks.
    g, d, gen = small_nets()
    x = torch.rand(8, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(8, 100, generator=gen, dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(16, gen)]
    simultaneous_grads_fused(g, d, x, z, masks, "minimax")
    fused_g = _grads(g)
    generator_grads(g, d, z, [m[8:] for m in masks], "minimax")
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-14) for u, v in zip(fused_g, _grads(g)))


def test_momentum_inside_the_gradient_products_equals_optimizer_step(small_nets):
    from advnets.optim import MomentumSGD

    g, d, gen = small_nets()
    x = torch.rand(10, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(10, 100, generator=gen, dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(20, gen)]
    params = list(g.parameters()) + list(d.parameters())
    start = [p.detach().clone() for p in params]
    results = []
    for fused_momentum in (False, True):
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        opt = MomentumSGD(params, lr=0.1, momentum=0.5)
        for _ in range(3):                                   # velocity carries over between updates
            if fused_momentum:
                simultaneous_grads_fused(g, d, x, z, masks, "non-saturating", d_out=opt, g_out=opt)
                opt.apply_velocity()
            else:
                simultaneous_grads_fused(g, d, x, z, masks, "non-saturating")
                opt.step()
        results.append([p.detach().clone() for p in params])
    for a, b, s in zip(*results, start):
        assert not torch.equal(a, s)
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("num_classes", [0, 3])
def test_layer_by_layer_update_is_bitwise_the_update_after_the_step(num_classes, small_nets):
    # `apply_now` lets the optimiser add each velocity as soon as its gradient is written; the weights must be exactly
    # those of adding all velocities after the step (each layer's input gradient is taken before its update).
    from advnets.optim import MomentumSGD

    g, d, gen = small_nets(num_classes=num_classes)
    g, d = g.float(), d.float()
    x = torch.rand(10, 64, generator=gen)
    z = torch.randn(10, 100, generator=gen)
    labels = torch.randint(max(num_classes, 1), (20,), generator=gen) if num_classes else None
    kw = {} if labels is None else {"real_labels": labels[:10], "fake_labels": labels[10:]}
    masks = d.draw_masks(20, gen)
    params = list(g.parameters()) + list(d.parameters())
    start = [p.detach().clone() for p in params]
    results = []
    for layer_by_layer in (False, True):
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        opt = MomentumSGD(params, lr=0.1, momentum=0.5)
        for _ in range(3):
            simultaneous_grads_fused(g, d, x, z, masks, "non-saturating", d_out=opt, g_out=opt,
                                     apply_now=layer_by_layer, **kw)
            if not layer_by_layer:
                opt.apply_velocity()
        results.append([p.detach().clone() for p in params])
    for a, b, s in zip(*results, start):
        assert not torch.equal(a, s)
        assert torch.equal(a, b)
