"""The convolutional CIFAR-10 networks and the sigmoid-hidden dense generator: shapes, maxout, dropout, training."""
from __future__ import annotations

import pytest
import torch

from advnets.config import ModelConfig, make_config
from advnets.errors import ConfigError
from advnets.models import ConvGenerator, MaxoutConvDiscriminator, MaxoutDiscriminator, MLPGenerator, build_models
from advnets.training.step_fused import supports_fused
from tests.conftest import SMALL_CONV as SMALL
from tests.training.oracle import simultaneous_grads_two_pass


def test_paper_cifar10_conv_shapes_and_init():
    g, d = build_models(make_config("paper-cifar10-conv").model, (3, 32, 32), None, torch.Generator().manual_seed(0))
    assert isinstance(g, ConvGenerator) and isinstance(d, MaxoutConvDiscriminator)
    assert [tuple(l.weight.shape) for l in g.layers] == [(8000, 100), (8000, 8000)]
    assert g.conv_shape == (80, 10, 10) and g.crop == (0, 0)             # 3 * (10 - 1) + 5 = 32: no cropping
    assert tuple(g.deconv.weight.shape) == (80, 3, 5, 5) and tuple(g.bias.shape) == (3, 32, 32)   # untied bias
    assert g.activations == ("relu", "sigmoid") and g.output == "linear"
    # cuda-convnet sizes: 32 -pad 4, k 8-> 33 -pool 4/2-> 16; -> 15 -> 7; -> 9 -pool 2/2-> 5
    assert d.input_shapes == [(3, 32, 32), (32, 16, 16), (32, 7, 7)] and d.flat == 192 * 5 * 5
    assert [tuple(c.weight.shape) for c in d.convs] == [(64, 3, 8, 8), (64, 32, 8, 8), (384, 32, 5, 5)]
    assert tuple(d.hidden[0].weight.shape) == (2500, 4800) and tuple(d.output.weight.shape) == (1, 500)
    assert max(p.abs().max().item() for p in [*g.layers.parameters(), g.deconv.weight]) <= 0.05 + 1e-8
    assert g.deconv.weight.abs().max().item() > 0.049
    assert max(m.weight.abs().max().item() for m in [*d.convs, *d.hidden, d.output]) <= 0.005 + 1e-9
    with torch.no_grad():
        x = g(torch.randn(2, 100))
        assert x.shape == (2, 3, 32, 32) and x.min() < 0                  # linear output for GCN data
        logits = d.eval()(x)
        assert logits.shape == (2,) and torch.equal(logits, d(x.reshape(2, -1)))   # flat or image input
    assert not supports_fused(g, d)


def test_fully_connected_cifar_and_tfd_generators():
    g, d = build_models(make_config("paper-cifar10-fc").model, (3, 32, 32), None, torch.Generator().manual_seed(0))
    assert type(g) is MLPGenerator and type(d) is MaxoutDiscriminator and not supports_fused(g, d)
    assert [tuple(l.weight.shape) for l in g.layers] == [(8000, 100), (8000, 8000), (3072, 8000)]
    assert [tuple(l.weight.shape) for l in d.hidden] == [(8000, 3072), (8000, 1600)]
    assert g.layers[-1].weight.abs().max().item() > 0.49                 # output weights in +-0.5
    z = torch.randn(3, 100)
    h = torch.sigmoid(g.layers[1](torch.relu(g.layers[0](z))))             # 100 -> 8000 ReLU -> 8000 sigmoid
    assert torch.allclose(g(z).reshape(3, -1), g.layers[2](h), atol=1e-5)
    g, d = build_models(make_config("paper-tfd").model, (1, 48, 48), torch.zeros(2304))
    assert [tuple(l.weight.shape) for l in g.layers] == [(8000, 100), (8000, 8000), (2304, 8000)]
    assert [tuple(l.weight.shape) for l in d.hidden] == [(6000, 2304), (6000, 1200)]
    # the MNIST networks are untouched: still the plain types the fused step knows
    g, d = build_models(make_config("paper-mnist").model, (1, 28, 28), None)
    assert type(g) is MLPGenerator and supports_fused(g, d)


def test_maxout_convolution_takes_the_max_over_pieces_then_pools():
    one_layer = ModelConfig(architecture="conv", discriminator_conv_units=(1,), discriminator_conv_pieces=2,
                            discriminator_conv_kernels=(1,), discriminator_conv_pads=(0,), discriminator_pool_shapes=(2,),
                            discriminator_pool_strides=(2,), discriminator_units=(), discriminator_pieces=1,
                            discriminator_input_include_prob=1.0, discriminator_input_scale=1.0,
                            discriminator_hidden_include_prob=1.0, discriminator_hidden_scale=1.0)
    d = MaxoutConvDiscriminator(one_layer, (1, 2, 2))
    with torch.no_grad():
        d.convs[0].weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))   # piece 0: 2x, piece 1: -x
        d.convs[0].bias.zero_()
        d.output.weight.fill_(1.0)
        d.output.bias.zero_()
    x = torch.tensor([[[[1.0, -3.0], [0.5, -0.5]]]])
    # per pixel max(2x, -x) = [[2, 3], [1, 0.5]]; 2x2 max pool -> 3
    assert d.features(x)[0].flatten().tolist() == [3.0]
    assert d.eval()(x).item() == 3.0


def test_dropout_masks_on_every_layer_input():
    cfg = make_config(overrides=SMALL).model
    _, d = build_models(cfg, (3, 12, 12), None, torch.Generator().manual_seed(0))
    masks = d.draw_masks(7, torch.Generator().manual_seed(1))
    # inputs: image, first conv's maps, the flattened second conv output, the maxout layer's output
    assert d.widths == [3 * 144, 4 * 36, 5 * 9, 8]
    assert [tuple(m.shape) for m in masks] == [(7, 432), (7, 144), (7, 45), (7, 8)]
    assert set(masks[0].unique().tolist()) == {0.0, 1.25} and set(masks[1].unique().tolist()) == {0.0, 2.0}
    x = torch.rand(7, 3, 12, 12)
    d.train()
    assert not torch.equal(d(x), d(x))                                    # fresh masks each call while training
    assert torch.equal(d(x, masks), d(x, masks))
    ones = [torch.ones_like(m) for m in masks]
    assert torch.allclose(d(x, ones), d.eval()(x))                        # no dropout = evaluation mode
    dropped = [torch.zeros_like(masks[0])] + ones[1:]
    assert torch.allclose(d(x, dropped), d(torch.zeros_like(x), ones))    # the input mask really masks the image


def test_generator_size_errors_name_the_fix():
    with pytest.raises(ConfigError) as info:
        build_models(make_config("paper-cifar10-conv").model, (1, 48, 48), None)
    assert "32x32" in info.value.message and "48x48" in info.value.message
    assert "80 x 16 x 16" in info.value.hint and "generator_hidden=8000,20480" in info.value.hint
    with pytest.raises(ConfigError, match="not model.generator_conv_channels=80 square"):
        build_models(make_config("paper-cifar10-conv", {"model.generator_hidden": [8000, 7999]}).model,
                     (3, 32, 32), None)
    with pytest.raises(ConfigError, match="generator_output=linear"):
        make_config("paper-cifar10-conv", {"model.generator_output": "sigmoid"})
    with pytest.raises(ConfigError, match="one value per convolution layer"):
        make_config("paper-cifar10-conv", {"model.discriminator_conv_pads": [4, 3]})
    with pytest.raises(ConfigError, match="did you mean 'conv'"):
        make_config(overrides={"model.architecture": "convv"})


def test_autograd_step_matches_a_finite_difference():
    cfg = make_config(overrides=SMALL).model
    g, d = build_models(cfg, (3, 12, 12), None, torch.Generator().manual_seed(0))
    g.double(), d.double()
    x, z = torch.rand(4, 3 * 144, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(8, torch.Generator().manual_seed(2))]
    simultaneous_grads_two_pass(g, d, x, z, masks, "non-saturating")
    from advnets.losses import discriminator_loss, generator_loss

    def losses():
        logits = d(torch.cat([x, g(z).reshape(4, -1)]), masks)
        return discriminator_loss(logits[:4], logits[4:]).item(), generator_loss("non-saturating", logits[4:]).item()

    for _net, param, which in ((d, d.convs[1].weight, 0), (g, g.deconv.weight, 1), (g, g.layers[0].weight, 1)):
        idx = tuple(0 for _ in param.shape)
        with torch.no_grad():
            param[idx] += 1e-6
            up = losses()[which]
            param[idx] -= 2e-6
            down = losses()[which]
            param[idx] += 1e-6
        assert param.grad[idx].item() == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU"))])
def test_conv_training_resumes_bit_identically(tmp_path, device):
    from advnets.training import train
    from tests.training.test_trainer import _assert_same_state, _state

    images = torch.rand(60, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    overrides = {**SMALL, "train.device": device}
    full = train(make_config(overrides=overrides), tmp_path / "full", train_images=images)
    assert full.step == 12 and (tmp_path / "full" / "samples" / "epoch_0002.png").is_file()
    train(make_config(overrides={**overrides, "train.max_steps": 8}), tmp_path / "part", train_images=images)
    train(make_config(overrides=overrides), tmp_path / "part", resume=True, train_images=images)
    _assert_same_state(_state(tmp_path / "full"), _state(tmp_path / "part"))


def test_dry_run_of_each_new_preset(tmp_path, capsys, monkeypatch):
    from advnets.cli import main

    monkeypatch.chdir(tmp_path)
    for preset in ("paper-cifar10-conv", "paper-cifar10-fc", "paper-tfd"):
        assert main(["train", "--preset", preset, "--dry-run", "--device", "auto"]) == 0, preset
    assert capsys.readouterr().out.count("dry run ok: 2 steps") == 3


def test_channels_last_d_equals_a_plain_nchw_computation():
    # D runs its feature maps channels-last (faster convolutions and pooling); the numbers must be those of the
    # textbook NCHW forward pass: conv, max over the pieces (amax), pool, dropout masks, dense maxout, logit
    import torch.nn.functional as F

    cfg = make_config(overrides=SMALL).model
    _, d = build_models(cfg, (3, 12, 12), None, torch.Generator().manual_seed(0))
    d = d.double()
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, 12, 12, generator=gen, dtype=torch.float64)
    masks = [m.double() for m in d.draw_masks(5, gen)]
    h = x
    for i, conv in enumerate(d.convs):
        h = h * masks[i].view_as(h)
        z = F.conv2d(h, conv.weight, conv.bias, padding=conv.padding)
        z = z.view(5, d.conv_pieces, -1, *z.shape[2:]).amax(1)
        h = F.max_pool2d(z, *d.pools[i], ceil_mode=True)
    assert h.is_contiguous()
    h = h.reshape(5, -1) * masks[len(d.convs)]
    h = d.hidden[0](h).view(5, d.pieces, -1).amax(1) * masks[-1]
    want = d.output(h).squeeze(1)
    got = d(x, masks)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-14)
    feature = d.features(x)[0]
    assert feature.is_contiguous(memory_format=torch.channels_last)        # the layout really is channels-last
