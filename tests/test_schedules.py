"""The paper's schedules, against numbers worked out independently of the code (pylearn2's ExponentialDecay and
MomentumAdjustor as configured in mnist.yaml)."""
import pytest

from advnets.schedules import learning_rate, momentum


def test_learning_rate_decays_per_update_with_floor():
    # mnist.yaml: lr 0.1, decay_factor 1.000004, min_lr 1e-6 (0.1 / 1.000004 = 0.0999996000016)
    assert learning_rate(0, 0.1, 1.000004, 1e-6) == 0.1
    assert learning_rate(1, 0.1, 1.000004, 1e-6) == pytest.approx(0.0999996000016, rel=1e-12)
    # after 250,000 updates (500 epochs of 500 minibatches): 0.1 * e^(-250000 ln 1.000004) = 0.03678801...
    assert learning_rate(250_000, 0.1, 1.000004, 1e-6) == pytest.approx(0.036788, rel=1e-4)
    # 0.1 / 1.000004**t reaches 1e-6 at t = ln(1e5) / ln(1.000004) = 2,878,225: the floor holds after it
    assert learning_rate(2_878_000, 0.1, 1.000004, 1e-6) > 1e-6
    assert learning_rate(2_879_000, 0.1, 1.000004, 1e-6) == 1e-6
    assert learning_rate(10**9, 0.1, 1.0, 1e-6) == 0.1                # no decay
    rates = [learning_rate(t, 0.1, 1.000004, 1e-6) for t in range(0, 5_000_000, 50_000)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))             # never rises


def test_momentum_ramp_from_epoch_1_to_250():
    ramp = (1, 250)
    # epochs count completed epochs: 0.5 until epoch 1 starts the ramp, 0.7 from epoch 250 on
    assert momentum(0, 0.5, 0.7, ramp) == 0.5
    assert momentum(1, 0.5, 0.7, ramp) == 0.5
    assert momentum(125, 0.5, 0.7, ramp) == pytest.approx(0.59959839, rel=1e-7)   # 124/249 of the way
    assert momentum(250, 0.5, 0.7, ramp) == pytest.approx(0.7)
    assert momentum(1000, 0.5, 0.7, ramp) == pytest.approx(0.7)
    steps = [momentum(e + 1, 0.5, 0.7, ramp) - momentum(e, 0.5, 0.7, ramp) for e in range(1, 250)]
    assert max(steps) == pytest.approx(min(steps)) == pytest.approx(0.2 / 249)     # linear in between
    assert momentum(3, 0.5, 0.7, (2, 2)) == 0.7


def test_decay_after_holds_the_rate_then_decays_from_there():
    assert learning_rate(0, 1e-3, 1.001, 1e-6, after=100) == 1e-3
    assert learning_rate(100, 1e-3, 1.001, 1e-6, after=100) == 1e-3
    assert learning_rate(101, 1e-3, 1.001, 1e-6, after=100) == pytest.approx(1e-3 / 1.001, rel=1e-12)
    assert learning_rate(1100, 1e-3, 1.001, 1e-6, after=100) == pytest.approx(1e-3 / 1.001 ** 1000, rel=1e-12)
    assert learning_rate(10**7, 1e-3, 1.001, 1e-6, after=100) == 1e-6
