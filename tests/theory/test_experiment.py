"""Tests for advnets.theory (section 4's math on a grid), the toy1d data and preset, the 1-D experiment
(advnets.theory.experiment) and its Figure 1 (advnets.theory.figure1).

The end-to-end checks train the toy1d preset once (quick settings, seed 2, about 20 s on one core) with the
library's Trainer. A GAN run is chaotic: a 1e-7 change of the initial weights (another CPU's rounding) gives
another trajectory. So each bound below is one that every one of seeds 0-9 met, with and without that
perturbation, with a margin of 2x or more (`benchmarks/theory_seeds.py --quick [--perturb 1e-7]`); the
measured spread (min / median / max over those runs) is stated at each assert.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from advnets.theory import densities as theory
from advnets.config import make_config
from advnets.data import GaussianMixture1D, load_data_split, load_split
from advnets.errors import ConfigError
from advnets.threads import torch_threads

LOG2 = math.log(2.0)


def normal(x, mean=0.0, std=1.0):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


# --- integrals on a grid -------------------------------------------------------------------


def test_jsd_of_identical_densities_is_zero_and_of_disjoint_ones_log2():
    x = theory.make_grid(-30, 30, 6001)
    p = normal(x, -1.0, 0.7)
    assert theory.jsd(p, p, x) == pytest.approx(0.0, abs=1e-12)
    assert theory.jsd(normal(x, -12), normal(x, 12), x) == pytest.approx(LOG2, abs=1e-9)


def test_jsd_of_half_overlapping_uniforms_is_half_log2():
    # p = U[0, 1], q = U[0.5, 1.5]: m = 1/2 where only one is positive, so JSD = (1/2) log 2
    x = theory.make_grid(-1, 2.5, 35001)                  # grid points on the jumps
    p = ((x >= 0) & (x <= 1)).astype(float)
    q = ((x >= 0.5) & (x <= 1.5)).astype(float)
    assert theory.jsd(p, q, x) == pytest.approx(0.5 * LOG2, abs=2e-3)
    assert theory.jsd(p, q, x) == pytest.approx(theory.jsd(q, p, x), abs=1e-12)


def test_kde_of_stratified_normal_draws_is_the_smoothed_normal():
    from advnets.theory.experiment import prior_quantiles

    samples = prior_quantiles(200_000, "gaussian").double().numpy().ravel() * 0.8 + 1.0    # N(1, 0.8^2)
    x = theory.make_grid(-4, 6, 4001)
    density, h = theory.kde_on_grid(samples, x, bandwidth=0.3)
    assert h == 0.3
    assert theory.trapezoid(density, x) == pytest.approx(1.0, abs=1e-6)
    assert np.max(np.abs(density - normal(x, 1.0, math.hypot(0.8, 0.3)))) < 2e-3
    # Silverman's rule, and the floor of two grid steps
    assert theory.silverman_bandwidth(samples) == pytest.approx(0.9 * 0.8 * 200_000 ** -0.2, rel=0.01)
    _, h_small = theory.kde_on_grid(samples, x, bandwidth=1e-6)
    assert h_small == pytest.approx(2 * (x[1] - x[0]))


# --- Proposition 1 and Theorem 1 on analytic densities -------------------------------------


def test_optimal_discriminator_is_the_density_ratio():
    x = theory.make_grid(-8, 8, 3201)
    p_data, p_g = normal(x, 0.0, 1.0), normal(x, 1.0, 1.0)
    d_star = theory.optimal_discriminator(p_data, p_g)
    # equal variances: logit D* = log p_data - log p_g = 0.5 - x
    assert np.allclose(np.log(d_star / (1 - d_star)), 0.5 - x, atol=1e-9)
    assert theory.optimal_discriminator(np.zeros(3), np.zeros(3)).tolist() == [0.5, 0.5, 0.5]
    assert theory.proposition1_gap(d_star, p_data, p_g, x) == 0.0


def test_virtual_criterion_is_minus_log4_plus_two_jsd():
    x = theory.make_grid(-12, 12, 4801)
    p_data, p_g = normal(x, 0.0, 1.0), normal(x, 1.0, 1.5)
    c_g = theory.virtual_criterion(p_data, p_g, x)
    jsd = theory.jsd(p_data, p_g, x)
    assert jsd > 0.05
    assert c_g == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-10)
    assert c_g == pytest.approx(theory.value_on_grid(p_data, p_g, theory.optimal_discriminator(p_data, p_g), x),
                                abs=1e-10)
    # any other D does worse; D = 1/2 gives exactly -log 4; p_g = p_data gives the global minimum -log 4
    assert theory.value_on_grid(p_data, p_g, np.full_like(x, 0.5), x) == pytest.approx(-math.log(4), abs=1e-9)
    assert theory.value_on_grid(p_data, p_g, 1 / (1 + np.exp(x - 0.3)), x) < c_g
    assert theory.virtual_criterion(p_data, p_data, x) == pytest.approx(-math.log(4), abs=1e-10)
    # the same value from logits
    logits = np.log(p_data / p_g)
    assert theory.value_from_logits(p_data, p_g, logits, x) == pytest.approx(c_g, abs=1e-9)


def test_proposition1_mean_gap_is_the_mass_weighted_mean_of_d_minus_d_star():
    x = theory.make_grid(-10, 10, 8001)
    p_data, p_g = normal(x, 0.0, 1.0), normal(x, 1.0, 1.0)
    d_star = theory.optimal_discriminator(p_data, p_g)
    assert theory.proposition1_mean_gap(d_star, p_data, p_g, x) == 0.0
    assert theory.proposition1_mean_gap(0.9 * d_star, p_data, p_g, x) == pytest.approx(
        0.1 * theory.trapezoid(0.5 * (p_data + p_g) * d_star, x), abs=1e-9)
    # disjoint densities: D* is 1 on p_data and 0 on p_g, so D = 1/2 is off by exactly 1/2 everywhere
    far_data, far_g = normal(x, -6.0, 0.5), normal(x, 6.0, 0.5)
    assert theory.proposition1_mean_gap(np.full_like(x, 0.5), far_data, far_g, x) == pytest.approx(0.5, abs=1e-9)


def test_mass_region_is_the_highest_density_region():
    x = theory.make_grid(-10, 10, 20001)
    p = normal(x)
    region = theory.mass_region(p, p, x, 0.99)
    assert x[region].min() == pytest.approx(-2.5758, abs=2e-3)
    assert x[region].max() == pytest.approx(2.5758, abs=2e-3)
    two_modes = 0.5 * normal(x, -4, 0.5) + 0.5 * normal(x, 4, 0.5)
    region = theory.mass_region(two_modes, two_modes, x, 0.99)
    assert not region[np.argmin(np.abs(x))]               # the gap between the modes is left out
    assert region[np.argmin(np.abs(x - 4))] and region[np.argmin(np.abs(x + 4))]


def test_generator_grad_norms_show_saturation():
    from advnets.config import ModelConfig
    from advnets.models import MaxoutDiscriminator, MLPGenerator

    nets = ModelConfig(noise_dim=1, generator_hidden=(4,), generator_init_range=0.1, generator_output="linear",
                       discriminator_units=(1,), discriminator_pieces=1, discriminator_input_include_prob=1.0,
                       discriminator_input_scale=1.0, discriminator_hidden_include_prob=1.0,
                       discriminator_hidden_scale=1.0)
    g = MLPGenerator(nets, (1, 1, 1), generator=torch.Generator().manual_seed(0))
    d = MaxoutDiscriminator(nets, (1, 1, 1))
    with torch.no_grad():                                 # logit = x - 6: D rejects G's samples near 0
        d.hidden[0].weight.fill_(1.0)
        d.hidden[0].bias.zero_()
        d.output.weight.fill_(1.0)
        d.output.bias.fill_(-6.0)
    for p in g.parameters():
        p.grad = torch.full_like(p, 7.0)
    z = torch.linspace(-1.7, 1.7, 64)[:, None]
    norms = theory.generator_grad_norms(g, d, z)
    expected = (1 - norms["d_fake"]) / norms["d_fake"]    # dL/dlogit: sigmoid(-l) vs sigmoid(l)
    assert norms["d_fake"] < 0.01
    assert norms["ratio_ns_over_minimax"] == pytest.approx(expected, rel=0.05)
    assert norms["ratio_ns_over_minimax"] > 100
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in g.parameters())   # grads restored


# --- the toy1d dataset and preset ----------------------------------------------------------


def test_toy1d_splits_are_fixed_draws_of_the_mixture():
    train = load_split("toy1d", "train", toy_means=(-2.0, 2.0), toy_stds=(0.5,), toy_weights=(1.0, 3.0),
                       toy_size=40_000)
    again = load_split("toy1d", "train", toy_means=(-2.0, 2.0), toy_stds=(0.5,), toy_weights=(1.0, 3.0),
                       toy_size=40_000)
    valid = load_split("toy1d", "valid", toy_means=(-2.0, 2.0), toy_stds=(0.5,), toy_weights=(1.0, 3.0),
                       toy_size=40_000)
    assert train.images.shape == (40_000, 1, 1, 1) and train.images.dtype == np.float32
    assert np.array_equal(train.images, again.images)
    assert not np.array_equal(train.images, valid.images)
    x = train.images.ravel()
    assert np.mean(x > 0) == pytest.approx(0.75, abs=0.01)   # weights 1 : 3
    assert x.min() < 0 and x.max() > 1                       # not pixels
    mixture = GaussianMixture1D((-2.0, 2.0), (0.5,), (1.0, 3.0))
    assert mixture.weights == (0.25, 0.75) and mixture.stds == (0.5, 0.5)
    assert mixture.std() == pytest.approx(math.sqrt(0.25 + 4 - 1), abs=1e-12)
    assert np.mean(x) == pytest.approx(mixture.mean(), abs=0.02)
    grid = theory.make_grid(-6, 6, 2001)
    assert theory.trapezoid(mixture.density(grid), grid) == pytest.approx(1.0, abs=1e-9)


def test_toy1d_mixture_errors_and_config():
    with pytest.raises(ConfigError, match="toy_stds"):
        GaussianMixture1D((0.0, 1.0), (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="positive"):
        GaussianMixture1D((0.0,), (0.0,))
    config = make_config("toy1d", {"data.toy_means": "-1,1", "data.toy_size": 500})
    assert config.data.toy_means == (-1.0, 1.0)
    split = load_data_split(config.data, "test")
    assert split.images.shape == (500, 1, 1, 1)
    assert abs(float(split.images.mean())) < 0.2
    m = make_config("toy1d").model
    assert (m.noise_dim, m.generator_output, m.generator_output_bias) == (1, "linear", "zero")
    assert (m.discriminator_input_include_prob, m.discriminator_hidden_include_prob) == (1.0, 1.0)


# --- the experiment, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_result():
    from advnets.theory.experiment import run_experiment

    with torch_threads(1):
        return run_experiment(seed=2, quick=True)


def test_proposition_1_trained_d_reaches_d_star(quick_result):
    p1 = quick_result.report["proposition_1"]
    # |D - D*| averaged under (p_data + p_g) / 2. At stage (a), D is only partially accurate: measured
    # 0.059 / 0.16 / 0.20 over seeds; after D is trained alone: 0.0030 / 0.0040 / 0.0059 (tolerance 0.01)
    assert p1["mean_gap_before"] > 0.03
    assert p1["mean_gap"] < 0.01 and p1["ok"]
    # the max over the 99% region sits in a tail and varies by seed: before 0.31 / 0.42 / 0.64,
    # after 0.033 / 0.077 / 0.24; only the drop is asserted
    assert p1["max_gap"] < p1["max_gap_before"]
    lo, hi = p1["region"]
    assert lo < -2 and hi > 2


def test_theorem_1_value_of_trained_d_is_minus_log4_plus_two_jsd(quick_result):
    t1 = quick_result.report["theorem_1"]
    assert t1["integration_error"] < 1e-8                  # C(G) = -log 4 + 2 JSD on the grid: exact
    # |V(G_s, D) - (-log 4 + 2 JSD)| for the trained D: 0.0002 / 0.0008 / 0.0021 over seeds (tolerance 0.01)
    assert t1["gap"] < 0.01 and t1["ok"]
    # at the end C(G) is near its minimum -log 4: C(G) + log 4 = 2 JSD, the mean over the last 20% of
    # training: 0.022 / 0.038 / 0.077 over seeds
    assert t1["c_g_final_mean"] - t1["minus_log4"] < 0.16
    conv = quick_result.report["convergence"]
    assert t1["c_g_final_mean"] - t1["minus_log4"] == pytest.approx(2 * conv["jsd_final_mean"], abs=1e-4)


def test_convergence_from_far_to_near_zero_with_d_near_half(quick_result):
    conv = quick_result.report["convergence"]
    assert conv["jsd_start"] > 0.3                         # G starts near a constant: 0.361 for every seed
    # the mean JSD over the last 20% of training (8 measurements): 0.011 / 0.019 / 0.039 over seeds
    # (the last measurement alone: 0.009 / 0.018 / 0.038); the report's tolerance is 0.05
    assert conv["window_measurements"] >= 5
    assert conv["jsd_final_mean"] < 0.08
    assert conv["jsd_final_mean"] < conv["jsd_start"] / 4
    # D's mean over the same window: on data 0.502 / 0.506 / 0.534, on samples 0.451 / 0.480 / 0.494
    assert abs(conv["d_data_final_mean"] - 0.5) < 0.1 and abs(conv["d_samples_final_mean"] - 0.5) < 0.1
    steps = [row[0] for row in conv["history"]]
    assert steps[0] == 0 and steps[-1] == quick_result.settings.max_steps
    # trained by the library's Trainer: the copied networks have done every Algorithm 1 update
    assert quick_result.players["d"].g_updates == quick_result.settings.max_steps


def test_saturation_table(quick_result):
    rows = {row["stage"].split(",")[0]: row for row in quick_result.report["saturation"]}
    start, rejected = rows["initialisation"], rows["initial G"]
    assert 0.8 < start["ratio"] < 1.25                     # D ~ 1/2: both losses give the same gradient
    assert rejected["d_samples"] < 0.2                     # D rejects G's samples confidently ...
    assert rejected["ratio"] > 4                           # ... and the minimax gradient has saturated
    assert rejected["grad_non_saturating"] > 4 * rejected["grad_minimax"]


def test_figures_and_cli(quick_result, tmp_path, monkeypatch, capsys):
    from PIL import Image

    import advnets.cli.theory
    from advnets.cli.theory import add_theory_command, add_toy1d_figure, report_json

    monkeypatch.setattr(advnets.cli.theory, "run_experiment", lambda *args, **kwargs: quick_result)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_theory_command(sub)
    figure = sub.add_parser("figure").add_subparsers(dest="figure")
    add_toy1d_figure(figure)

    args = parser.parse_args(["theory", "--quick", "--out", str(tmp_path / "report.json"),
                              "--figures", str(tmp_path / "figs")])
    assert args.func(args) == (0 if quick_result.report["ok"] else 1)   # exits 1 when a check fails
    # what it prints and writes is the library's report
    printed = capsys.readouterr().out
    assert printed == report_json(quick_result.report) + "\n" == (tmp_path / "report.json").read_text()
    assert json.dumps(json.loads(printed)) == json.dumps(quick_result.report)
    failing = dataclasses.replace(quick_result, report={**quick_result.report, "ok": False,
                                                        "convergence": {**quick_result.report["convergence"],
                                                                        "ok": False}})
    monkeypatch.setattr(advnets.cli.theory, "run_experiment", lambda *args, **kwargs: failing)
    assert args.func(args) == 1
    monkeypatch.setattr(advnets.cli.theory, "run_experiment", lambda *args, **kwargs: quick_result)
    args = parser.parse_args(["figure", "toy1d", "--out", str(tmp_path / "fig1"), "--seed", "2",
                              "--set", "data.toy_stds=1.0"])
    assert args.func(args) == 0
    for name in ("figure1_toy1d.png", "figure1_training.png"):
        with Image.open(tmp_path / "fig1" / name) as image:
            assert image.width > image.height > 300
        assert (tmp_path / "figs" / name).is_file()
    assert not list((tmp_path / "fig1").glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_settings_pass_every_check(seed):
    # The full experiment (2,000+ iterations, about a minute each on one core): every check of `advnets theory`
    # passes. benchmarks/theory_seeds.py measured 10 of 10 seeds passing, final JSD (mean of the last 20%)
    # 0.011-0.035 against the 0.05 tolerance.  Run with: python -m pytest -m slow tests/theory
    from advnets.theory.experiment import run_experiment

    report = run_experiment(seed=seed).report
    assert report["proposition_1"]["ok"] and report["theorem_1"]["ok"] and report["convergence"]["ok"]
