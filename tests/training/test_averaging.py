"""train.generator_ema: the moving average of G's weights, checked against the formula applied by hand, leaving
training untouched, resumed bit for bit, and used by everything that samples a run."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError
from advnets.run.loaded import load_run
from advnets.training import Reporter, Trainer, train
from advnets.run.checkpoint import load_checkpoint


class Snapshots(Reporter):
    """G's weights after every iteration, in float64."""

    def __init__(self):
        self.weights = []

    def step(self, trainer, stats):
        self.weights.append([p.detach().double().clone() for p in trainer.generator.parameters()])


def test_average_is_the_formula_and_training_is_unchanged(digits_images, tiny_overrides):
    plain, snaps = Trainer(make_config(overrides=tiny_overrides), None, train_images=digits_images), Snapshots()
    plain.reporter.reporters.append(snaps)
    plain.run()
    averaged = Trainer(make_config(overrides={**tiny_overrides, "train.generator_ema": 0.9}), None,
                       train_images=digits_images)
    initial = [p.detach().double().clone() for p in averaged.generator.parameters()]
    averaged.run()
    # the same raw G and D: the average takes nothing from the random stream and feeds nothing back
    for a, b in zip(plain.generator.state_dict().values(), averaged.generator.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(plain.discriminator.state_dict().values(), averaged.discriminator.state_dict().values()):
        assert torch.equal(a, b)
    # by hand: a_0 = G_0; a_t = beta_t a_{t-1} + (1 - beta_t) G_t, beta_t = min(0.9, (1 + t) / (10 + t)), t from 0
    expected = initial
    for t, weights in enumerate(snaps.weights):
        beta = min(0.9, (1 + t) / (10 + t))
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, weights)]
    assert len(snaps.weights) == averaged.g_updates > 20
    got = [p.double() for p in averaged.sampler.parameters()]
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, atol=1e-7, rtol=1e-5)
    # the average is not the last G: it lags it by a fair share of how far G moved in training
    flat = lambda ps: torch.cat([p.reshape(-1) for p in ps])                        # noqa: E731
    moved, lag = (flat(snaps.weights[-1]) - flat(initial)).norm(), (flat(got) - flat(snaps.weights[-1])).norm()
    assert moved > 0 and lag > 0.05 * moved
    assert averaged.sampler is not averaged.generator and plain.sampler is plain.generator


def test_resume_restores_the_average_bit_for_bit(tmp_path, digits_images, tiny_overrides):
    overrides = {**tiny_overrides, "train.generator_ema": 0.95}
    full, part = tmp_path / "full", tmp_path / "part"
    train(make_config(overrides=overrides), full, train_images=digits_images)
    train(make_config(overrides={**overrides, "train.max_steps": 13}), part, train_images=digits_images)
    train(make_config(overrides=overrides), part, resume=True, train_images=digits_images)
    a, b = (load_checkpoint(p / "checkpoints" / "last.pt")["generator_average"] for p in (full, part))
    assert a["updates"] == b["updates"] > 13
    for key in a["weights"]:
        assert torch.equal(a["weights"][key], b["weights"][key])


def test_load_run_samples_the_average_unless_asked(tmp_path, digits_images, tiny_overrides):
    run = tmp_path / "r"       # Adam moves G far enough in these few steps for the average to lag it visibly
    train(make_config(overrides={**tiny_overrides, "train.generator_ema": 0.95, "train.optimizer": "adam",
                                 "train.lr": 2e-3}), run, train_images=digits_images)
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    avg, raw = load_run(run, device="cpu"), load_run(run, device="cpu", average=False)
    assert avg.averaged and not raw.averaged
    for key, value in payload["generator_average"]["weights"].items():
        assert torch.equal(avg.generator.state_dict()[key], value)
        assert torch.equal(raw.generator.state_dict()[key], payload["generator"][key])
    assert (avg.sample(16, seed=3) - raw.sample(16, seed=3)).abs().max() > 1e-3
    # the command line: the average by default, G itself with --raw-generator
    outs = []
    for extra in ([], ["--raw-generator"]):
        out = tmp_path / f"s{len(extra)}.npy"
        subprocess.run([sys.executable, "-m", "advnets", "sample", str(run), "--n", "16", "--seed", "3",
                        "--device", "cpu", "--out", str(out), *extra], check=True, capture_output=True)
        outs.append(np.load(out))
    np.testing.assert_allclose(outs[0], avg.sample(16, seed=3).numpy(), atol=1e-6)
    np.testing.assert_allclose(outs[1], raw.sample(16, seed=3).numpy(), atol=1e-6)


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5])
def test_decay_out_of_range_is_one_line(value):
    with pytest.raises(ConfigError, match=r"train.generator_ema must be in \[0, 1\)"):
        make_config(overrides={"train.generator_ema": value})
