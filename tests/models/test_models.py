import math

import pytest
import torch

from advnets.config import ModelConfig, make_config
from advnets.models import MaxoutDiscriminator, MLPGenerator, build_models, dropout_mask, marginal_logits, sample_noise

# D without dropout (every unit kept, unscaled)
NO_DROPOUT = {"discriminator_input_include_prob": 1.0, "discriminator_input_scale": 1.0,
              "discriminator_hidden_include_prob": 1.0, "discriminator_hidden_scale": 1.0}


def test_paper_mnist_shapes_and_init_ranges():
    g, d = build_models(make_config("paper-mnist").model, (1, 28, 28), torch.full((784,), -2.0),
                        torch.Generator().manual_seed(0))
    assert [tuple(l.weight.shape) for l in g.layers] == [(1200, 100), (1200, 1200), (784, 1200)]
    assert [tuple(l.weight.shape) for l in d.hidden] == [(1200, 784), (1200, 240)]
    assert tuple(d.output.weight.shape) == (1, 240)
    assert max(l.weight.abs().max().item() for l in g.layers) <= 0.05
    assert g.layers[0].weight.abs().max().item() > 0.049           # really uniform on the whole range
    assert max(l.weight.abs().max().item() for l in d.hidden) <= 0.005
    assert torch.equal(g.layers[-1].bias, torch.full((784,), -2.0))
    assert g(torch.zeros(3, 100)).shape == (3, 1, 28, 28)


def test_marginal_logits_clip_like_pylearn2():
    images = torch.tensor([[0.0, 1.0, 0.5], [0.0, 1.0, 0.5]])
    bias = marginal_logits(images)
    assert bias[0].item() == pytest.approx(math.log(1e-3 / (1 - 1e-3)), rel=1e-5)
    assert bias[1].item() == pytest.approx(-bias[0].item(), rel=1e-5)
    assert bias[2].item() == pytest.approx(0.0, abs=1e-6)


def test_maxout_takes_max_over_pieces():
    d = MaxoutDiscriminator(ModelConfig(discriminator_units=(2,), discriminator_pieces=3, **NO_DROPOUT), (1, 1, 2))
    with torch.no_grad():
        # piece-major layout: rows [p0u0, p0u1, p1u0, p1u1, p2u0, p2u1]
        d.hidden[0].weight.copy_(torch.tensor([[1., 0], [0, 1], [2, 0], [0, -1], [-1, 0], [0, 3]]))
        d.hidden[0].bias.zero_()
        d.output.weight.copy_(torch.tensor([[1.0, 10.0]]))
        d.output.bias.zero_()
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    # unit 0 = max(x0, 2 x0, -x0); unit 1 = max(x1, -x1, 3 x1)
    assert torch.allclose(d.features(x)[0], torch.tensor([[2.0, 3.0], [1.0, 1.0]]))
    assert torch.allclose(d.eval()(x), torch.tensor([32.0, 11.0]))


def test_dropout_mask_rate_and_scale():
    g = torch.Generator().manual_seed(0)
    mask = dropout_mask((1000, 500), 0.8, 1.25, g)
    assert set(mask.unique().tolist()) == {0.0, 1.25}
    kept = (mask > 0).float().mean().item()
    assert kept == pytest.approx(0.8, abs=0.003)                  # 500k draws: std 0.0006
    assert mask.mean().item() == pytest.approx(1.0, abs=0.004)    # scale x include prob = 1: E[x * mask] = x
    half = dropout_mask((1000, 500), 0.5, 2.0, g)
    assert (half > 0).float().mean().item() == pytest.approx(0.5, abs=0.003)
    assert dropout_mask((3, 3), 1.0, 1.0, g) is None
    # no dropout but a scale: every unit kept and scaled (include_prob 1 once dropped every unit: an int16 overflow)
    assert torch.equal(dropout_mask((3, 4), 1.0, 5.0, g), torch.full((3, 4), 5.0))


def test_discriminator_dropout_only_in_training():
    d = MaxoutDiscriminator(ModelConfig(discriminator_units=(8,), discriminator_pieces=2, discriminator_init_range=0.5),
                            (1, 4, 4), torch.Generator().manual_seed(1))
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(3))

    def by_hand(masks):                                     # maxout layer, then the logit, masks on each input
        h = x.reshape(6, 16) * masks[0]
        h = (h @ d.hidden[0].weight.t() + d.hidden[0].bias).view(6, 2, 8).amax(1)
        return (h * masks[1]) @ d.output.weight[0] + d.output.bias

    ones = [torch.ones(6, 16), torch.ones(6, 8)]
    assert torch.allclose(d.eval()(x), by_hand(ones), atol=1e-6)      # evaluation: no dropout at all
    d.train()
    masks = d.draw_masks(6, torch.Generator().manual_seed(2))
    assert masks[0].shape == (6, 16) and masks[1].shape == (6, 8)
    assert set(masks[0].unique().tolist()) <= {0.0, 1.25} and set(masks[1].unique().tolist()) <= {0.0, 2.0}
    assert torch.allclose(d(x, masks), by_hand(masks), atol=1e-6)      # the given masks, scaled kept units
    assert not torch.allclose(d(x, masks), by_hand(ones))


def test_noise_priors_have_unit_variance():
    g = torch.Generator().manual_seed(0)
    u = sample_noise(20000, 50, "uniform", g)
    assert u.abs().max().item() <= math.sqrt(3)
    assert u.var().item() == pytest.approx(1.0, abs=0.01)
    n = sample_noise(20000, 50, "gaussian", g)
    assert n.var().item() == pytest.approx(1.0, abs=0.01) and n.abs().max().item() > 3
    with pytest.raises(ValueError):
        sample_noise(2, 2, "cauchy", g)


def test_linear_generator_output():
    g = MLPGenerator(ModelConfig(noise_dim=1, generator_hidden=(4,), generator_output="linear"), (1, 1, 1),
                     generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        g.layers[-1].bias.fill_(5.0)
    assert g(torch.zeros(2, 1)).min().item() >= 4.0      # not squashed into (0, 1)


def test_dropout_mask_is_its_16_bit_draws_against_the_threshold():
    # The mask is written from the comparison in one pass; it must equal the plain formula on the same draws
    # (16 bits per unit, include_prob rounded to a multiple of 1/65536), so runs stay bit-identical.
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    mask = dropout_mask((7, 9), 0.8, 1.25, g)
    g.set_state(state)
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((63 + 3) // 4,), dtype=torch.int64, generator=g)
    bits = words.view(torch.int16)[:63].view(7, 9)
    expected = (bits < round(0.8 * 65536) - 32768).to(torch.float32) * 1.25
    assert mask.dtype == torch.float32 and torch.equal(mask, expected)


def test_every_activation_the_config_allows_is_a_layer():
    from advnets.config.schema import choices, field_types
    from advnets.models.layers import ACTIVATIONS

    assert set(choices(field_types(ModelConfig)["generator_activations"])) == set(ACTIVATIONS)


def test_the_nets_read_the_model_section_and_build_models_checks_it():
    from advnets.errors import ConfigError

    m = ModelConfig(noise_dim=3, generator_hidden=(5, 6), generator_activations=("relu", "sigmoid"),
                    discriminator_units=(4,), discriminator_pieces=2)
    g = MLPGenerator(m, (1, 2, 2))
    assert g.activations == ("relu", "sigmoid") and [layer.in_features for layer in g.layers] == [3, 5, 6]
    assert MLPGenerator(ModelConfig(generator_hidden=(5, 6, 7)), (1, 2, 2)).activations == ("relu",) * 3
    d = MaxoutDiscriminator(m, (1, 2, 2), num_classes=3)
    assert d.hidden[0].in_features == 4 + 3 and d.dropout == [(0.8, 1.25), (0.5, 2.0)]
    with pytest.raises(ConfigError, match="one per entry of model.generator_hidden"):
        build_models(ModelConfig(generator_activations=("relu", "sigmoid", "relu")), (1, 2, 2), None)
