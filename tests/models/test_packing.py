"""Packing (models/packing.py, PacGAN): D judges `pack` examples concatenated; the steps split its logits in half."""
import numpy as np
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError
from advnets.losses import discriminator_loss, generator_loss
from advnets.models import build_models
from advnets.models.packing import PackedDiscriminator
from advnets.training.step_fused import supports_fused
from advnets.training.step_alternating import discriminator_grads
from tests.training.oracle import simultaneous_grads_two_pass

PACKED = {"model.pack": 3, "model.generator_hidden": [16], "model.discriminator_units": [12, 8],
          "model.discriminator_pieces": 3, "model.noise_dim": 4, "train.batch_size": 6}


def _nets(overrides=PACKED, shape=(1, 2, 2)):
    cfg = make_config(None, overrides)
    g, d = build_models(cfg.model, shape, None, torch.Generator().manual_seed(0))
    return cfg, g.double(), d.double()


def test_packed_d_is_the_inner_d_on_hand_concatenated_examples():
    _, _, d = _nets()
    assert isinstance(d, PackedDiscriminator) and d.pack == 3
    assert d.inner.hidden[0].in_features == 3 * 4                  # the first layer reads 3 examples of 4 values
    x = torch.randn(9, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    hand = torch.stack([torch.cat([x[3 * i + j].reshape(-1) for j in range(3)]) for i in range(3)])   # (3, 12)
    d.eval()
    assert torch.equal(d(x), d.inner(hand))
    d.train()
    masks = d.draw_masks(9, torch.Generator().manual_seed(2))
    assert [m.shape[0] for m in masks if m is not None] == [3] * 3                 # one mask row per packed row
    assert torch.equal(d(x, masks), d.inner(hand, masks))
    with pytest.raises(ValueError, match="divisible"):
        d(x[:8])


def test_pack_one_builds_the_plain_discriminator():
    _, _, d = _nets({**PACKED, "model.pack": 1})
    assert not isinstance(d, PackedDiscriminator) and d.hidden[0].in_features == 4


def test_packed_steps_score_the_packed_halves():
    """The D and simultaneous steps on a packed D: the losses of its logits on the packed data and packed samples."""
    _, g, d = _nets()
    gen = torch.Generator().manual_seed(3)
    x, z = torch.randn(6, 4, dtype=torch.float64, generator=gen), torch.randn(6, 4, dtype=torch.float64, generator=gen)
    masks = d.draw_masks(12, gen)
    with torch.no_grad():
        logits = d(torch.cat([x, g(z).reshape(6, -1)]), masks)                   # (4,): 2 real rows, 2 fake
    real, fake = logits[:2], logits[2:]
    stats = simultaneous_grads_two_pass(g, d, x, z, masks, "non-saturating")
    assert torch.allclose(stats.d_loss, discriminator_loss(real, fake))
    assert torch.allclose(stats.g_loss, generator_loss("non-saturating", fake))
    assert torch.allclose(discriminator_grads(g, d, x, z, masks).d_loss, discriminator_loss(real, fake))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in [*g.parameters(), *d.parameters()])


def test_packed_d_is_never_fused():
    _, g, d = _nets({**PACKED, "model.generator_output": "sigmoid"})
    _, g1, d1 = _nets({**PACKED, "model.generator_output": "sigmoid", "model.pack": 1})
    assert supports_fused(g1, d1) and not supports_fused(g, d)


def test_pack_settings_are_checked():
    with pytest.raises(ConfigError, match="divisible"):
        make_config(None, {"model.pack": 4, "train.batch_size": 50})
    with pytest.raises(ConfigError, match="conditional"):
        make_config(None, {"model.pack": 2, "model.conditional": True})
    with pytest.raises(ConfigError, match="positive"):
        make_config(None, {"model.pack": 0})


def test_a_pack_two_run_trains(tiny_overrides, digits_images):
    from advnets.training.trainer import Trainer

    cfg = make_config(None, {**tiny_overrides, "model.pack": 2, "train.epochs": 1, "train.tensorboard": False})
    trainer = Trainer(cfg, None, train_images=digits_images[:200])
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    result = trainer.run()
    assert result.step == 10 and not (trainer.algorithm.step.name == "fused")
    assert all(np.isfinite(result.last_metrics[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert all(not torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))
