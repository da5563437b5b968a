"""The shared-backward simultaneous step (training/shared.py) must give autograd's two-pass gradients
(steps.simultaneous_grads_autograd) for every per-example D: convolutional, dense, conditional, packed; both
generator losses; and the two-pass fallback when D is too sure that a sample is fake."""
import pytest
import torch

from advnets.config import make_config
from advnets.models import build_models
from advnets.models.packing import PackedDiscriminator
from advnets.training import step_autograd as shared_module
from advnets.training.step_autograd import simultaneous_grads_autograd, supports_autograd_step
from tests.conftest import SMALL_CONV as SMALL
from tests.training.oracle import simultaneous_grads_two_pass

KINDS = ["non-saturating", "minimax"]


def _grads(*nets):
    return [p.grad.clone() for n in nets for p in n.parameters()]


def _compare(g, d, x, z, masks, kind, **labels):
    """Both steps on the same inputs: every gradient close (and non-zero), the statistics equal."""
    for p in [*g.parameters(), *d.parameters()]:
        p.grad = None
    shared = simultaneous_grads_autograd(g, d, x, z, masks, kind, **labels)
    a = _grads(g, d)
    auto = simultaneous_grads_two_pass(g, d, x, z, masks, kind, **labels)
    b = _grads(g, d)
    assert len(a) == len(b) == len(list(g.parameters())) + len(list(d.parameters()))
    for ga, gb in zip(a, b):
        assert gb.abs().max() > 0
        assert torch.allclose(ga, gb, rtol=1e-10, atol=1e-14 * gb.abs().max().item())
    for s in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert getattr(shared, s).item() == pytest.approx(getattr(auto, s).item(), rel=1e-12)
    return a


def _count_passes(monkeypatch) -> list[int]:
    """Records, per torch.autograd.grad call of the step, how many inputs it asks for."""
    calls, grad = [], torch.autograd.grad
    monkeypatch.setattr(shared_module.torch.autograd, "grad",
                        lambda outputs, inputs, **kw: calls.append(len(inputs)) or grad(outputs, inputs, **kw))
    return calls


def _conv_nets(seed=0):
    """The tiny convolutional config: deconvolutional G with a sigmoid hidden layer, maxout-conv D with pooling."""
    g, d = build_models(make_config(overrides=SMALL).model, (3, 12, 12), None, torch.Generator().manual_seed(seed))
    with torch.no_grad():                    # larger weights than the paper's init: every path carries gradient
        for p in [*g.parameters(), *d.parameters()]:
            p.uniform_(-0.3, 0.3, generator=torch.Generator().manual_seed(seed + 1))
    return g.double(), d.double()


@pytest.mark.parametrize("kind", KINDS)
def test_shared_equals_autograd_for_the_conv_nets(kind):
    g, d = _conv_nets()
    gen = torch.Generator().manual_seed(5)
    x, z = torch.rand(6, 3 * 144, generator=gen, dtype=torch.float64), torch.randn(6, 6, generator=gen,
                                                                                  dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(12, gen)]
    assert supports_autograd_step(d)
    _compare(g, d, x, z, masks, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_shared_equals_autograd_for_a_sigmoid_hidden_mlp_generator(kind, small_nets):
    g, d, gen = small_nets({"model.generator_activations": ["relu", "sigmoid"]})
    x = torch.rand(10, 64, generator=gen, dtype=torch.float64)
    z = torch.rand(10, 100, generator=gen, dtype=torch.float64) * 3.4 - 1.7
    _compare(g, d, x, z, [m.double() for m in d.draw_masks(20, gen)], kind)


def test_shared_without_dropout_equals_autograd(small_nets):
    g, d, gen = small_nets({"model.discriminator_input_include_prob": 1.0, "model.discriminator_input_scale": 1.0,
                            "model.discriminator_hidden_include_prob": 1.0, "model.discriminator_hidden_scale": 1.0})
    masks = d.draw_masks(12, gen)
    assert all(m is None for m in masks)
    x, z = torch.rand(6, 64, generator=gen, dtype=torch.float64), torch.randn(6, 100, generator=gen,
                                                                              dtype=torch.float64)
    _compare(g, d, x, z, masks, "non-saturating")


@pytest.mark.parametrize("kind", KINDS)
def test_shared_equals_autograd_for_conditional_nets(kind, small_nets):
    g, d, gen = small_nets(num_classes=3)
    x = torch.rand(9, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(9, 100, generator=gen, dtype=torch.float64)
    labels = torch.randint(3, (18,), generator=gen)
    _compare(g, d, x, z, [m.double() for m in d.draw_masks(18, gen)], kind,
             real_labels=labels[:9], fake_labels=labels[9:])


@pytest.mark.parametrize("kind", KINDS)
def test_shared_equals_autograd_for_a_packed_d(kind):
    # one logit per packed row of 3 examples: the ratio scales the 3 samples of each row alike
    cfg = make_config(None, {"model.pack": 3, "model.generator_hidden": [16], "model.discriminator_units": [12, 8],
                             "model.discriminator_pieces": 3, "model.noise_dim": 4, "train.batch_size": 6})
    g, d = build_models(cfg.model, (1, 2, 2), None, torch.Generator().manual_seed(0))
    g, d = g.double(), d.double()
    with torch.no_grad():
        for p in [*g.parameters(), *d.parameters()]:
            p.uniform_(-0.8, 0.8, generator=torch.Generator().manual_seed(1))
    assert isinstance(d, PackedDiscriminator) and supports_autograd_step(d)
    gen = torch.Generator().manual_seed(3)
    x, z = torch.randn(6, 4, dtype=torch.float64, generator=gen), torch.randn(6, 4, dtype=torch.float64, generator=gen)
    _compare(g, d, x, z, d.draw_masks(12, gen), kind)


def test_the_ratio_of_the_two_logit_derivatives_is_the_losses():
    # non-saturating: (-sigmoid(-f)/m) / (sigmoid(f)/2m) = -2 exp(-f); minimax: -2
    f = torch.tensor([-3.0, 0.0, 2.5], dtype=torch.float64)
    r = torch.zeros(4, dtype=torch.float64)
    for kind, want in (("non-saturating", -2 * torch.exp(-f)), ("minimax", torch.full_like(f, -2.0))):
        _, _, _, gd_fake, gg_fake = shared_module._logit_grads(r, f, kind, lambda loss: loss)
        assert torch.allclose(gg_fake / gd_fake, want, rtol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_fallback_when_d_rejects_a_sample_beyond_the_ratio_s_range(kind, monkeypatch):
    # D's output bias at -800: sigmoid(f) ~ e^-800 underflows float64, dL_D/df is 0 on every sample and the ratio is
    # not finite. The step must then take the second pass and still give autograd's gradients.
    g, d = _conv_nets()
    with torch.no_grad():
        d.output.bias.fill_(-800.0)
    gen = torch.Generator().manual_seed(5)
    x, z = torch.rand(6, 3 * 144, generator=gen, dtype=torch.float64), torch.randn(6, 6, generator=gen,
                                                                                  dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(12, gen)]
    calls = _count_passes(monkeypatch)
    if kind == "minimax":            # G's gradient vanishes with D's: all zero, nothing to compare but zeros
        simultaneous_grads_autograd(g, d, x, z, masks, kind)
        assert all(p.grad.abs().max() == 0 for p in g.parameters())
    else:                            # non-saturating: G's gradient is alive and must be autograd's
        a = simultaneous_grads_autograd(g, d, x, z, masks, kind)
        g_shared = _grads(g)
        b = simultaneous_grads_two_pass(g, d, x, z, masks, kind)
        assert a.g_loss.item() == pytest.approx(b.g_loss.item(), rel=1e-12)
        for u, v in zip(g_shared, _grads(g)):
            assert v.abs().max() > 0 and torch.allclose(u, v, rtol=1e-10, atol=1e-14 * v.abs().max().item())
    # two calls for the logits' derivatives, then D's pass, the fallback pass through D (inputs [y]), G's pass
    assert calls[:5] == [2, 1, len(list(d.parameters())) + 1, 1, len(list(g.parameters()))]


def test_no_fallback_in_the_normal_case(monkeypatch):
    g, d = _conv_nets()
    gen = torch.Generator().manual_seed(5)
    x, z = torch.rand(6, 3 * 144, generator=gen, dtype=torch.float64), torch.randn(6, 6, generator=gen,
                                                                                  dtype=torch.float64)
    calls = _count_passes(monkeypatch)
    simultaneous_grads_autograd(g, d, x, z, [m.double() for m in d.draw_masks(12, gen)], "non-saturating")
    assert calls == [2, 1, len(list(d.parameters())) + 1, len(list(g.parameters()))]   # one pass through D


def test_fallback_threshold_is_tiny_over_eps_of_the_logits_dtype(monkeypatch):
    # a logit where float32's dL_D/df is normal but below tiny / eps: the float32 step falls back, float64 does not
    g, d = _conv_nets()
    gen = torch.Generator().manual_seed(5)
    x, z = torch.rand(6, 3 * 144, generator=gen), torch.randn(6, 6, generator=gen)
    masks = d.draw_masks(12, gen)
    with torch.no_grad():
        d.output.bias.fill_(-75.0)         # sigmoid(-75) / 12 ~ 2e-34: above float32's tiny (1.2e-38), below 1e-31
    calls = _count_passes(monkeypatch)
    for dtype, passes in ((torch.float32, 5), (torch.float64, 4)):
        g, d = g.to(dtype), d.to(dtype)
        calls.clear()
        simultaneous_grads_autograd(g, d, x.to(dtype), z.to(dtype), [m.to(dtype) for m in masks], "non-saturating")
        assert len(calls) == passes
