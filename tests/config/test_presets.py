"""`paper-mnist` is the original MNIST run (goodfeli/adversarial mnist.yaml), value by value; the other presets
differ from it only where their own yaml files do."""
import dataclasses

import pytest

from advnets.config import PRESETS, make_config, preset_names


def test_paper_mnist_is_the_papers_table():
    c = make_config("paper-mnist")
    d, m, t = c.data, c.model, c.train
    assert d.dataset == "mnist"
    # noise: 100-d, uniform with unit variance
    assert (m.noise_dim, m.noise_prior) == (100, "uniform")
    # G: 100 -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid, weights U(+-0.05), output bias from the pixel marginals
    assert m.generator_hidden == (1200, 1200) and m.generator_activations == ("relu",)
    assert (m.generator_output, m.generator_init_range, m.generator_output_bias) == ("sigmoid", 0.05, "marginals")
    # D: maxout 240 x 5 -> 240 x 5 -> 1, weights U(+-0.005), dropout 0.8 x1.25 on x, 0.5 x2 later
    assert (m.discriminator_units, m.discriminator_pieces, m.discriminator_init_range) == ((240, 240), 5, 0.005)
    assert (m.discriminator_input_include_prob, m.discriminator_input_scale) == (0.8, 1.25)
    assert (m.discriminator_hidden_include_prob, m.discriminator_hidden_scale) == (0.5, 2.0)
    assert m.architecture == "mlp" and not m.conditional
    # SGD, batch 100, lr 0.1 decayed by 1.000004 per update (floor 1e-6), momentum 0.5 -> 0.7 over epochs 1-250
    assert (t.optimizer, t.batch_size, t.lr, t.lr_decay, t.lr_min) == ("sgd", 100, 0.1, 1.000004, 1e-6)
    assert (t.momentum_start, t.momentum_end, t.momentum_ramp_epochs) == (0.5, 0.7, (1, 250))
    # k = 1, D and G from the same minibatch in one step (the original code), non-saturating G loss
    assert (t.schedule, t.k_discriminator_steps, t.generator_loss) == ("simultaneous", 1, "non-saturating")


def test_cifar10_conv_preset_is_its_yaml():
    m, t = make_config("paper-cifar10-conv").model, make_config("paper-cifar10-conv").train
    assert m.architecture == "conv" and m.generator_hidden == (8000, 8000)
    assert m.generator_activations == ("relu", "sigmoid") and m.generator_conv_channels == 80
    assert (m.generator_conv_kernel, m.generator_conv_stride) == (5, 3)
    assert m.discriminator_conv_units == (32, 32, 192) and m.discriminator_conv_kernels == (8, 8, 5)
    assert m.discriminator_pool_shapes == (4, 4, 2) and m.discriminator_units == (500,)
    assert (t.batch_size, t.lr) == (128, 0.004)
    assert make_config("paper-cifar10-conv").data.contrast_normalize == 55.0


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_a_valid_config(name):
    config = make_config(name)
    for key, value in PRESETS[name].items():
        section, field = key.split(".")
        got = getattr(getattr(config, section), field)
        assert got == (tuple(value) if isinstance(value, list) else value), key


@pytest.mark.parametrize("name", ["grid", "ring"])
def test_mixture_presets_are_small_mlps_on_their_mixture(name):
    c = make_config(name)
    assert c.data.dataset == name and c.model.pack == 1                    # the paper's D; pack is the remedy
    assert c.model.generator_output == "linear" and c.model.generator_output_bias == "zero"   # real-valued data
    assert c.model.discriminator_pieces == 5 and c.model.architecture == "mlp"               # a maxout D
    assert c.train.coverage_every_epochs == 1                              # the collapse shows in every epoch line
    assert make_config(name, {"model.pack": 4, "train.batch_size": 400}).model.pack == 4


@pytest.mark.parametrize("name", ["grid", "ring"])
def test_pack2_presets_are_the_mixture_presets_with_packing_and_as_many_updates(name):
    base, packed = make_config(name), make_config(f"{name}-pack2")
    assert packed.model.pack == 2 and packed.train.batch_size == 2 * base.train.batch_size
    assert packed.train.epochs * (100_000 // packed.train.batch_size) == \
        base.train.epochs * (100_000 // base.train.batch_size)               # the same number of updates
    assert packed.model == dataclasses.replace(base.model, pack=2)
    assert packed.train == dataclasses.replace(base.train, batch_size=packed.train.batch_size,
                                               epochs=packed.train.epochs)
    assert base.train.generator_ema == 0.999                                 # samples from the average of G


def _updates(train) -> int:
    return train.epochs * (100_000 // train.batch_size)


def test_remedy_presets_are_packing_with_top_k_and_on_the_grid_a_longer_decay():
    ring = make_config("ring-pack2")                                       # the ring: packing with top-k, same budget
    assert make_config("ring-remedy") == dataclasses.replace(ring, train=dataclasses.replace(ring.train, top_k=0.5))
    base, remedy = make_config("grid"), make_config("grid-remedy")
    assert remedy.model == dataclasses.replace(base.model, pack=2)
    t = remedy.train
    assert (t.batch_size, t.top_k, t.lr, t.lr_decay_after) == (200, 0.5, base.train.lr, base.train.lr_decay_after)
    assert _updates(t) == 48_000 and _updates(base.train) == 32_000
    assert t.lr_decay ** (_updates(t) - t.lr_decay_after) == pytest.approx(30, rel=1e-3)   # 30-fold, last 32,000
    assert t == dataclasses.replace(base.train, batch_size=200, epochs=t.epochs, top_k=0.5, lr_decay=t.lr_decay)


def test_stacked_presets_are_the_paper_recipe_and_the_remedy_on_the_same_budget():
    paper, remedy, mnist = make_config("stacked-mnist"), make_config("stacked-mnist-remedy"), make_config("paper-mnist")
    assert paper.data.dataset == remedy.data.dataset == "stacked-mnist"
    assert paper.model == mnist.model and paper.train == dataclasses.replace(mnist.train, epochs=paper.train.epochs)
    assert remedy.train.epochs == paper.train.epochs and remedy.train.batch_size == paper.train.batch_size
    no_dropout = dict(discriminator_input_include_prob=1.0, discriminator_input_scale=1.0,
                      discriminator_hidden_include_prob=1.0, discriminator_hidden_scale=1.0)
    assert remedy.model == dataclasses.replace(mnist.model, pack=2, **no_dropout)       # PacGAN's D, same sizes
    t = remedy.train
    assert (t.schedule, t.k_discriminator_steps, t.optimizer, t.generator_ema) == ("alternating", 1, "adam", 0.999)
    updates = t.epochs * (remedy.data.stack_size // t.batch_size)
    assert updates // 2 < t.lr_decay_after < updates              # a steady rate, then down 10-fold to the end
    assert t.lr_decay ** (updates - t.lr_decay_after) == pytest.approx(10, rel=0.02)


def test_the_quick_start_remedy_is_the_stacked_remedy_on_the_quick_start():
    quick, remedy, stacked = (make_config(n) for n in ("paper-mnist-5k", "paper-mnist-5k-remedy",
                                                       "stacked-mnist-remedy"))
    assert remedy.data == quick.data and remedy.model == stacked.model             # same digits; PacGAN's D
    assert (remedy.train.epochs, remedy.train.batch_size) == (quick.train.epochs, quick.train.batch_size)
    same = ("schedule", "k_discriminator_steps", "optimizer", "adam_betas", "lr", "generator_ema")
    assert all(getattr(remedy.train, k) == getattr(stacked.train, k) for k in same)
    updates = remedy.train.epochs * 4000 // remedy.train.batch_size              # mnist-5k trains on 4,000 digits
    t = remedy.train
    assert updates // 2 < t.lr_decay_after < updates
    assert t.lr_decay ** (updates - t.lr_decay_after) == pytest.approx(10, rel=0.02)
