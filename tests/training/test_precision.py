"""train.precision (autocast bf16 / fp16) and the GPU paths: the fused step against autograd and bit-exact resume on
CUDA (skipped without a GPU; the rest of the suite also runs on the GPU there, since train.device defaults to auto)."""
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError
from advnets.training import Trainer, train
from advnets.training.step_fused import simultaneous_grads_fused
from tests.training.oracle import simultaneous_grads_two_pass
from tests.training.test_trainer import _assert_same_state, _state

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _step_losses(tmp_path, digits_images, overrides, name):
    cfg = make_config(overrides={**overrides, "train.max_steps": 30, "train.log_every_steps": 1, "train.lr": 0.5,
                                 "model.discriminator_init_range": 0.05, "train.device": "cpu"})
    trainer = Trainer(cfg, tmp_path / name, train_images=digits_images)
    trainer.run()
    import json
    lines = [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return trainer, torch.tensor([[l["d_loss"], l["g_loss"]] for l in lines])


@pytest.mark.parametrize("net", [{"model.generator_activations": ["sigmoid"]},               # autograd MLP
                                 {"train.schedule": "alternating"}])
def test_bf16_autocast_trains_close_to_fp32(tmp_path, digits_images, tiny_overrides, net):
    overrides = {**tiny_overrides, **net}
    full, f32 = _step_losses(tmp_path, digits_images, overrides, "fp32")
    half, b16 = _step_losses(tmp_path, digits_images, {**overrides, "train.precision": "bf16"}, "bf16")
    assert not (half.algorithm.step.name == "fused") and torch.isfinite(b16).all()
    assert not torch.equal(f32, b16)                 # autocast did change the arithmetic ...
    assert (f32 - b16).abs().max() < 0.02            # ... by bf16's ~3 significant digits, over 30 steps
    for p, q in zip(full.generator.parameters(), half.generator.parameters()):
        assert p.dtype == q.dtype == torch.float32   # the parameters stay fp32


def test_bf16_uses_autograd_instead_of_the_fused_step(digits_images, tiny_overrides):
    cfg = make_config(overrides={**tiny_overrides, "train.device": "cpu", "train.precision": "bf16"})
    assert not Trainer(cfg, None, train_images=digits_images).algorithm.step.name == "fused"
    cfg = make_config(overrides={**tiny_overrides, "train.device": "cpu"})
    assert Trainer(cfg, None, train_images=digits_images).algorithm.step.name == "fused"


def test_fp16_needs_a_gpu(digits_images, tiny_overrides):
    cfg = make_config(overrides={**tiny_overrides, "train.device": "cpu", "train.precision": "fp16"})
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        Trainer(cfg, None, train_images=digits_images)


@CUDA
@pytest.mark.parametrize("kind", ["non-saturating", "minimax"])
def test_fused_equals_autograd_on_cuda(kind, small_nets):
    g, d, gen = small_nets()
    g, d = g.cuda(), d.cuda()
    x = torch.rand(10, 64, generator=gen, dtype=torch.float64).cuda()
    z = (torch.rand(10, 100, generator=gen, dtype=torch.float64) * 3.4 - 1.7).cuda()
    masks = [m.double().cuda() for m in d.draw_masks(20, torch.Generator(device="cuda").manual_seed(0))]
    simultaneous_grads_fused(g, d, x, z, masks, kind)
    fused = [p.grad.clone() for n in (g, d) for p in n.parameters()]
    simultaneous_grads_two_pass(g, d, x, z, masks, kind)
    for a, p in zip(fused, [p for n in (g, d) for p in n.parameters()]):
        assert p.grad.abs().max() > 0 and torch.allclose(a, p.grad, rtol=1e-10, atol=1e-14)


@CUDA
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_resume_is_bit_identical_on_cuda(tmp_path, digits_images, tiny_overrides, precision):
    overrides = {**tiny_overrides, "train.device": "cuda", "train.precision": precision}
    train(make_config(overrides=overrides), tmp_path / "full", train_images=digits_images)
    train(make_config(overrides={**overrides, "train.max_steps": 13}), tmp_path / "part", train_images=digits_images)
    train(make_config(overrides=overrides), tmp_path / "part", resume=True, train_images=digits_images)
    _assert_same_state(_state(tmp_path / "full"), _state(tmp_path / "part"))
