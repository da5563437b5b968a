"""Top-k training (train.top_k, Sinha et al. 2020): G's gradient must be that of its loss over only the samples (packed
rows) D rates highest, found here the slow way (sorted in Python, one logit at a time, float64); the kept fraction
follows its per-epoch schedule in a real run and resumes exactly; off, the step is unchanged; the config refuses what
it cannot do."""
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError
from advnets.losses import generator_loss
from advnets.models import build_models
from advnets.schedules import top_k_fraction
from advnets.training import Trainer, train
from advnets.run.checkpoint import load_checkpoint
from advnets.training import step_alternating
from advnets.training.step_alternating import generator_grads


def _nets(pack: int):
    config = make_config("grid", {"model.pack": pack, "model.generator_hidden": [16, 16],
                                  "model.discriminator_units": [8, 8], "model.discriminator_init_range": 0.5})
    g, d = build_models(config.model, (2, 1, 1), None, torch.Generator().manual_seed(3))
    return g.double(), d.double()


def _g_grads(g, d, z, loss_kind, keep):
    for p in g.parameters():
        p.grad = None
    stats = generator_grads(g, d, z, None, loss_kind, keep=keep)
    return stats, [p.grad.clone() for p in g.parameters()]


def _brute_force(g, d, z, loss_kind, n_keep, pack):
    """G's loss over the n_keep packed rows with the highest logits, each row through D on its own."""
    fake = g(z).reshape(len(z) // pack, pack, -1)
    logits = [d(row.reshape(pack, -1)).reshape(()) for row in fake]
    order = sorted(range(len(logits)), key=lambda i: -logits[i].item())[:n_keep]
    loss = generator_loss(loss_kind, torch.stack([logits[i] for i in order]))
    return order, loss, torch.autograd.grad(loss, list(g.parameters()))


@pytest.mark.parametrize("pack, keep, n_keep", [(1, 0.5, 6), (2, 0.5, 3), (1, 0.3, 4)])
@pytest.mark.parametrize("loss_kind", ["non-saturating", "minimax"])
def test_top_k_gradient_matches_the_brute_force_loss(pack, keep, n_keep, loss_kind):
    g, d = _nets(pack)
    z = torch.randn(12, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _, everything = _g_grads(g, d, z, loss_kind, 1.0)
    stats, kept = _g_grads(g, d, z, loss_kind, keep)
    order, loss, expected = _brute_force(g, d, z, loss_kind, n_keep, pack)
    assert 0 < len(order) < len(z) // pack
    for a, b in zip(kept, expected):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)
    assert stats.g_loss.item() == pytest.approx(loss.item(), rel=1e-12)
    # dropping samples changes G's gradient (a test of the above that cannot pass with keep ignored)
    assert max((a - b).abs().max().item() for a, b in zip(kept, everything)) > 1e-4


def test_top_k_off_leaves_the_step_unchanged():
    g, d = _nets(2)
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, a = _g_grads(g, d, z, "non-saturating", 1.0)
    b = torch.autograd.grad(generator_loss("non-saturating", d(g(z))), list(g.parameters()))
    for ga, gb in zip(a, b):
        assert torch.equal(ga, gb)


def test_the_kept_fraction_decays_per_epoch_to_its_floor():
    assert [top_k_fraction(e, 0.5, 0.9) for e in (0, 1, 2)] == [1.0, 0.9, pytest.approx(0.81)]
    assert top_k_fraction(6, 0.5, 0.9) == pytest.approx(0.531441)                   # 0.9**6, then 0.9**7 = 0.48
    assert top_k_fraction(7, 0.5, 0.9) == 0.5 == top_k_fraction(10**6, 0.5, 0.9)
    assert top_k_fraction(6, 0.6, 0.9) == 0.6
    assert top_k_fraction(50, 1.0, 0.5) == 1.0                                       # off
    assert top_k_fraction(3, 0.25, 1.0) == 1.0                                       # no decay: never drops


@pytest.mark.parametrize("overrides, message", [
    ({"train.top_k": 0.0}, r"must be in \(0, 1\]"),
    ({"train.top_k": 1.5}, r"must be in \(0, 1\]"),
    ({"train.top_k": 0.5, "train.top_k_decay": 1.2}, r"must be in \(0, 1\]"),
    ({"train.top_k": 0.5, "train.schedule": "simultaneous"}, "alternating schedule"),
])
def test_config_refuses_a_top_k_it_cannot_apply(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("grid", overrides)


def _overrides(tiny_overrides):
    # fast decay (0.5 per epoch, floor 0.25) so that a few short epochs cross every stage of the schedule
    return {**tiny_overrides, "train.schedule": "alternating", "train.top_k": 0.25, "train.top_k_decay": 0.5}


def test_training_passes_each_epochs_fraction_to_g(monkeypatch, digits_images, tiny_overrides):
    """The trainer's G step gets keep = max(top_k, top_k_decay ** epoch), and drops that share of the samples."""
    seen, real = [], step_alternating.generator_grads

    def spy(*args, keep=1.0, **kwargs):
        seen.append(keep)
        return real(*args, keep=keep, **kwargs)

    monkeypatch.setattr(step_alternating, "generator_grads", spy)
    t = Trainer(make_config(overrides={**_overrides(tiny_overrides), "train.epochs": 4}), None,
                train_images=digits_images)
    t.run()
    per_epoch = t.iterations_per_epoch()
    assert per_epoch > 1 and len(seen) == 4 * per_epoch
    assert seen == [f for f in (1.0, 0.5, 0.25, 0.25) for _ in range(per_epoch)]


def test_training_with_top_k_is_seeded_differs_from_without_and_resumes_exactly(tmp_path, digits_images,
                                                                               tiny_overrides):
    overrides = {**_overrides(tiny_overrides), "train.epochs": 3}
    full, part, off = tmp_path / "full", tmp_path / "part", tmp_path / "off"
    train(make_config(overrides=overrides), full, train_images=digits_images)
    per_epoch = Trainer(make_config(overrides=overrides), None, train_images=digits_images).iterations_per_epoch()
    # stop inside the second epoch (keep 0.5), resume into the third (keep 0.25)
    train(make_config(overrides={**overrides, "train.max_steps": per_epoch + 2}), part, train_images=digits_images)
    train(make_config(overrides=overrides), part, resume=True, train_images=digits_images)
    train(make_config(overrides={**overrides, "train.top_k": 1.0}), off, train_images=digits_images)
    a, b, c = (load_checkpoint(p / "checkpoints" / "last.pt")["generator"] for p in (full, part, off))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert max((a[key] - c[key]).abs().max().item() for key in a) > 0
