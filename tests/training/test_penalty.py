"""The R1 gradient penalty on D (train.gradient_penalty, steps.discriminator_grads): D's gradient must be that of
-V/2 + gamma / 2 * mean ||d logit / dx||^2 over D's real inputs, computed here the slow way (one real input at a
time, float64), for the paper's D and a packed one; off, the step is unchanged; the config refuses what it cannot do."""
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError
from advnets.losses import discriminator_loss
from advnets.models import build_models
from advnets.training import Trainer
from advnets.training.step_alternating import discriminator_grads


def _nets(pack: int):
    config = make_config("grid", {"model.pack": pack, "model.generator_hidden": [16, 16],
                                  "model.discriminator_units": [8, 8], "model.discriminator_init_range": 0.5})
    g, d = build_models(config.model, (2, 1, 1), None, torch.Generator().manual_seed(3))
    return g.double(), d.double()


def _d_grads(g, d, x, z, penalty):
    for p in d.parameters():
        p.grad = None
    stats = discriminator_grads(g, d, x, z, None, penalty=penalty)
    return stats, [p.grad.clone() for p in d.parameters()]


def _plain_loss(g, d, x, z, pack):
    """-V/2 from one call of D on [data; samples], differentiable in D's weights (G is not)."""
    with torch.no_grad():
        fake = g(z).reshape(len(z), -1)
    logits = d(torch.cat([x, fake]))
    return discriminator_loss(logits[:len(x) // pack], logits[len(x) // pack:])


def _brute_force(g, d, x, z, gamma, pack):
    """-V/2, plus the penalty with each real (packed) row's gradient taken on its own."""
    loss = _plain_loss(g, d, x, z, pack)
    rows = x.reshape(len(x) // pack, pack, -1)
    norms = []
    for row in rows:
        r = row.clone().requires_grad_()
        (dr,) = torch.autograd.grad(d(r.reshape(pack, -1)).sum(), r, create_graph=True)
        norms.append(dr.pow(2).sum())
    total = loss + gamma / 2 * torch.stack(norms).mean()
    return torch.autograd.grad(total, list(d.parameters()))


@pytest.mark.parametrize("pack", [1, 2])
def test_penalty_gradient_matches_the_brute_force_objective(pack):
    g, d = _nets(pack)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(8, 2, generator=gen, dtype=torch.float64) * 2
    z = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    _, plain = _d_grads(g, d, x, z, 0.0)
    stats, penalised = _d_grads(g, d, x, z, 2.5)
    expected = _brute_force(g, d, x, z, 2.5, pack)
    for a, b in zip(penalised, expected, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)
    # the penalty changes D's gradient (a test of the above that cannot pass with penalty ignored)
    assert max((a - p).abs().max().item() for a, p in zip(penalised, plain)) > 1e-4
    # the reported loss stays -V/2, without the penalty
    assert stats.d_loss.item() == pytest.approx(_plain_loss(g, d, x, z, pack).item(), rel=1e-12)


def test_penalty_off_leaves_the_step_unchanged():
    g, d = _nets(2)
    gen = torch.Generator().manual_seed(1)
    x, z = torch.randn(6, 2, generator=gen, dtype=torch.float64), torch.randn(6, 2, generator=gen, dtype=torch.float64)
    _, a = _d_grads(g, d, x, z, 0.0)
    b = torch.autograd.grad(_plain_loss(g, d, x, z, 2), list(d.parameters()))
    for ga, gb in zip(a, b):
        assert torch.equal(ga, gb)


@pytest.mark.parametrize("overrides, message", [
    ({"train.gradient_penalty": -1.0}, "must be >= 0"),
    ({"train.gradient_penalty": 1.0, "train.schedule": "simultaneous"}, "alternating schedule"),
])
def test_config_refuses_a_penalty_it_cannot_apply(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("grid", overrides)


def test_training_with_the_penalty_is_seeded_and_differs_from_without(digits_images, tiny_overrides):
    """The option reaches the trainer's D step: same seed, same weights; penalty on, other weights than off."""
    base = {**tiny_overrides, "train.schedule": "alternating", "train.max_steps": 15}

    def d_weights(penalty):
        t = Trainer(make_config(overrides={**base, "train.gradient_penalty": penalty}), None, train_images=digits_images)
        t.run()
        assert t.g_updates == 15
        return [p.detach().clone() for p in t.discriminator.parameters()]

    on, again, off = d_weights(1.0), d_weights(1.0), d_weights(0.0)
    assert all(torch.equal(a, b) for a, b in zip(on, again))
    assert max((a - b).abs().max().item() for a, b in zip(on, off)) > 0
