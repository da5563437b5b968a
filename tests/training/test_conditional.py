"""The conditional model p(x | c) (paper section 7, item 1): the label enters G and D, the fused step equals
autograd with labels, the trainer threads labels through both schedules and resumes exactly, and sampling
takes a class."""
import json

import numpy as np
import pytest
import torch

from advnets.cli import main
from advnets.config import make_config
from advnets.data import load_split
from advnets.errors import DataError
from advnets.run.layout import CHECKPOINT
from advnets.run.loaded import load_run
from advnets.training.step_alternating import discriminator_grads, generator_grads
from advnets.training.step_fused import simultaneous_grads_fused, supports_fused
from tests.training.oracle import simultaneous_grads_two_pass
from advnets.training import Trainer, train

K = 10


def _grads(*nets):
    return [p.grad.clone() for n in nets for p in n.parameters()]


def test_the_label_is_an_input_of_both_networks(small_nets):
    g, d, gen = small_nets(num_classes=K)
    assert g.layers[0].in_features == 100 + K and d.hidden[0].in_features == 64 + K
    g.eval()
    d.eval()
    z = torch.randn(4, 100, generator=gen, dtype=torch.float64)
    a, b = g(z, labels=torch.tensor([1, 1, 1, 1])), g(z, labels=torch.tensor([2, 2, 2, 2]))
    assert (a - b).abs().max() > 1e-3                          # same z, another class: another image
    assert (d(a, labels=torch.tensor([1] * 4)) - d(a, labels=torch.tensor([7] * 4))).abs().max() > 1e-3
    # the one-hot label selects a column of the first layer: G(z, c) = rest(relu(W_z z + W[:, 100 + c] + b))
    w = g.layers[0].weight
    h = torch.relu(z @ w[:, :100].t() + w[:, 100 + 1] + g.layers[0].bias)
    h = torch.relu(g.layers[1](h))
    assert torch.allclose(torch.sigmoid(g.layers[2](h)).view(4, 1, 8, 8), a)
    with pytest.raises(ValueError, match="needs class labels"):
        g(z)
    with pytest.raises(ValueError, match="needs class labels"):
        d(a)


@pytest.mark.parametrize("kind", ["non-saturating", "minimax"])
def test_fused_step_with_labels_equals_autograd(kind, small_nets):
    g, d, gen = small_nets(num_classes=K)
    x = torch.rand(10, 64, generator=gen, dtype=torch.float64)
    z = torch.rand(10, 100, generator=gen, dtype=torch.float64) * 3.4 - 1.7
    c_real, c_fake = torch.randint(K, (10,), generator=gen), torch.randint(K, (10,), generator=gen)
    masks = [m.double() for m in d.draw_masks(20, gen)]
    assert supports_fused(g, d)
    fused = simultaneous_grads_fused(g, d, x, z, masks, kind, real_labels=c_real, fake_labels=c_fake)
    a = _grads(g, d)
    auto = simultaneous_grads_two_pass(g, d, x, z, masks, kind, real_labels=c_real, fake_labels=c_fake)
    b = _grads(g, d)
    for ga, gb in zip(a, b):
        assert gb.abs().max() > 0
        assert torch.allclose(ga, gb, rtol=1e-10, atol=1e-14)
    assert fused.g_loss.item() == pytest.approx(auto.g_loss.item(), rel=1e-12)
    # the label columns of D's and G's first layers get gradient only for the classes present
    d_label_cols = b[len(list(g.parameters()))][:, 64:]             # D's first weight, label columns
    present = torch.zeros(K, dtype=torch.bool)
    present[torch.cat([c_real, c_fake])] = True
    assert torch.all(d_label_cols[:, ~present] == 0) and torch.all(d_label_cols[:, present].abs().sum(0) > 0)


def test_algorithm1_steps_take_labels(small_nets):
    g, d, gen = small_nets(num_classes=K)
    x = torch.rand(8, 64, generator=gen, dtype=torch.float64)
    z = torch.randn(8, 100, generator=gen, dtype=torch.float64)
    c_real, c_fake = torch.randint(K, (8,), generator=gen), torch.randint(K, (8,), generator=gen)
    masks = [m.double() for m in d.draw_masks(16, gen)]
    simultaneous_grads_fused(g, d, x, z, masks, "non-saturating", real_labels=c_real, fake_labels=c_fake)
    fused_g, fused_d = _grads(g), _grads(d)
    for p in list(g.parameters()) + list(d.parameters()):
        p.grad = None
    discriminator_grads(g, d, x, z, masks, real_labels=c_real, fake_labels=c_fake)
    generator_grads(g, d, z, [m[8:] for m in masks], "non-saturating", fake_labels=c_fake)
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-14) for u, v in zip(fused_d, _grads(d)))
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-14) for u, v in zip(fused_g, _grads(g)))


def _digits():
    split = load_split("digits", "train")
    return split.images, split.labels


def test_conditional_training_writes_one_row_per_class_and_resumes_exactly(tmp_path, tiny_overrides):
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.epochs": 2})
    full = train(config, tmp_path / "full", train_images=images, train_labels=labels)
    payload = load_checkpoint_payload(tmp_path / "full")
    assert payload["num_classes"] == 10 and payload["fixed_noise"].shape == (10 * 4, 8)
    from PIL import Image

    grid = Image.open(tmp_path / "full" / "samples" / "epoch_0002.png")
    assert grid.size == (4 * 10 + 2, 10 * 10 + 2)               # 4 columns, one row per class, 8px + 2px padding

    # stop after 30 steps (mid-epoch), resume: the same weights as the uninterrupted run
    short = with_max_steps(config, 30)
    train(short, tmp_path / "resumed", train_images=images, train_labels=labels)
    Trainer(config, tmp_path / "resumed", resume=True, train_images=images, train_labels=labels).run()
    a, b = load_checkpoint_payload(tmp_path / "full"), load_checkpoint_payload(tmp_path / "resumed")
    assert full.step == b["g_updates"]
    for net in ("generator", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key}"


def test_alternating_schedule_trains_a_conditional_model(tmp_path, tiny_overrides):
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.epochs": 1,
                                    "train.schedule": "alternating", "train.k_discriminator_steps": 2})
    trainer = Trainer(config, tmp_path / "run", train_images=images, train_labels=labels)
    assert not (trainer.algorithm.step.name == "fused")
    result = trainer.run()
    assert result.step == len(images) // 40
    run = load_run(tmp_path / "run")
    assert run.num_classes == 10 and run.sample(3, labels=4).shape == (3, 1, 8, 8)


def test_conditional_needs_labels(tmp_path, tiny_overrides):
    images, _ = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True})
    with pytest.raises(DataError, match="needs class labels"):
        Trainer(config, tmp_path / "run", train_images=images)
    assert not (tmp_path / "run").exists()                      # a failed start leaves nothing


def test_conditional_needs_the_mlp_networks():
    from advnets.errors import ConfigError

    with pytest.raises(ConfigError, match="MLP networks"):
        make_config("paper-cifar10-conv", {"model.conditional": True})


def test_the_generator_learns_the_classes(tmp_path, tiny_overrides):
    # After 2,500 steps (3 s) on the 8x8 digits, samples of class c are nearest the class-c mean image far more
    # often than chance (1 in 10): the label is being used (measured: 0.84).
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.epochs": 100,
                                    "model.noise_dim": 16, "model.generator_hidden": [64, 64],
                                    "model.discriminator_units": [32, 32], "train.batch_size": 50,
                                    "train.optimizer": "adam", "train.lr": 0.002,
                                    "model.discriminator_init_range": 0.05, "train.sample_every_epochs": 1000,
                                    "train.checkpoint_every_epochs": 1000})
    train(config, tmp_path / "run", train_images=images, train_labels=labels)
    run = load_run(tmp_path / "run")
    means = torch.stack([torch.as_tensor(images[labels == c]).mean(0).flatten() for c in range(10)])
    hits = 0
    for c in range(10):
        x = run.sample(50, seed=c, labels=c).flatten(1)
        hits += int((torch.cdist(x, means).argmin(1) == c).sum())
    assert hits / 500 > 0.6


def test_eval_class_accuracy(tmp_path, tiny_overrides, digits_classifier_cache, capsys):
    # `advnets eval --class-accuracy` on the run above: the package's CNN, trained on the real digits (cached under
    # $ADVNETS_DATA: the session's copy), recognises the intended class far above chance; on an untrained G it is
    # near chance.
    images, labels = _digits()
    learned = {"model.noise_dim": 16, "model.generator_hidden": [64, 64], "model.discriminator_units": [32, 32],
               "train.batch_size": 50, "train.optimizer": "adam", "train.lr": 0.002,
               "model.discriminator_init_range": 0.05, "train.sample_every_epochs": 1000,
               "train.checkpoint_every_epochs": 1000, "model.conditional": True}
    accuracy = {}
    for name, steps in (("untrained", 1), ("trained", 2500)):
        config = make_config(overrides={**tiny_overrides, **learned, "train.epochs": 100, "train.max_steps": steps})
        train(config, tmp_path / name, train_images=images, train_labels=labels)
        assert main(["eval", str(tmp_path / name), "--class-accuracy", "--per-class", "50"]) == 0
        report = json.loads((tmp_path / name / "eval" / "class_accuracy.json").read_text())
        assert report["n"] == 500 and len(report["per_class"]) == 10 and report["classifier_held_out_accuracy"] > 0.95
        assert sum(map(sum, report["confusion"])) == 500
        accuracy[name] = report["accuracy"]
    assert accuracy["trained"] > 0.6 and accuracy["untrained"] < 0.3
    assert "recognises the intended class in" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "classifiers").iterdir())) == 1       # the one cached classifier
    assert not (tmp_path / "untrained" / "eval" / "parzen.json").exists()     # only what was asked for


def test_eval_class_accuracy_needs_a_conditional_run(tmp_path, digits_images, tiny_overrides, capsys):
    train(make_config(overrides={**tiny_overrides, "train.max_steps": 2}), tmp_path / "run",
          train_images=digits_images)
    assert main(["eval", str(tmp_path / "run"), "--class-accuracy"]) == 1
    assert "not a conditional run" in capsys.readouterr().err


def test_cli_sample_class_and_grid(tmp_path, tiny_overrides, capsys):
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.epochs": 1})
    train(config, tmp_path / "run", train_images=images, train_labels=labels)
    run_dir = str(tmp_path / "run")
    assert main(["sample", run_dir, "--class", "3", "--n", "6", "--out", str(tmp_path / "three.npy")]) == 0
    threes = np.load(tmp_path / "three.npy")
    run = load_run(run_dir)
    assert np.array_equal(threes, run.sample(6, seed=0, labels=3).numpy())
    assert main(["sample", run_dir, "--n", "20", "--out", str(tmp_path / "all.npy")]) == 0
    assert np.load(tmp_path / "all.labels.npy").tolist() == [c for c in range(10) for _ in range(2)]
    assert main(["sample", run_dir, "--n", "20"]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "run" / "samples_20_seed0.png").size == (2 * 10 + 2, 10 * 10 + 2)
    capsys.readouterr()
    assert main(["sample", run_dir, "--class", "12"]) == 1
    assert "class 12 is not one of this run's classes 0..9" in capsys.readouterr().err


def test_cli_class_on_an_unconditional_run(tmp_path, digits_images, tiny_overrides, capsys):
    train(make_config(overrides={**tiny_overrides, "train.epochs": 1}), tmp_path / "run", train_images=digits_images)
    assert main(["sample", str(tmp_path / "run"), "--class", "3"]) == 1
    err = capsys.readouterr().err
    assert "not a conditional run" in err and "Traceback" not in err


def load_checkpoint_payload(run_dir):
    from advnets.run.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / CHECKPOINT)


def with_max_steps(config, steps):
    from advnets.config import with_overrides

    return with_overrides(config, {"train.max_steps": steps})


def test_config_json_records_conditional(tmp_path, tiny_overrides):
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.max_steps": 2})
    train(config, tmp_path / "run", train_images=images, train_labels=labels)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["conditional"] is True


def test_figures_and_extensions_on_a_conditional_run(tmp_path, tiny_overrides, capsys):
    images, labels = _digits()
    config = make_config(overrides={**tiny_overrides, "model.conditional": True, "train.epochs": 1})
    train(config, tmp_path / "run", train_images=images, train_labels=labels)
    run_dir = str(tmp_path / "run")
    from advnets.figures.paper_figures import interpolation_figure

    run = load_run(run_dir)
    grid = interpolation_figure(run, rows=3, steps=4)        # row r: class r, z along a line
    assert grid.shape[:2] == (3 * 10 + 2, 4 * 10 + 2)
    assert main(["figure", "samples", run_dir, "--rows", "2", "--cols", "3"]) == 0
    capsys.readouterr()
    assert main(["infer", run_dir, "--steps", "1"]) == 1      # E(x) ~ z has no class input: refused, one line
    err = capsys.readouterr().err
    assert "takes an unconditional run" in err and "Traceback" not in err
