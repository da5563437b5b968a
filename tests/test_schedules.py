import pytest

from advnets.schedules import learning_rate, momentum


def test_learning_rate_decays_per_update_with_floor():
    assert learning_rate(0, 0.1, 1.000004, 1e-6) == 0.1
    assert learning_rate(1, 0.1, 1.000004, 1e-6) == pytest.approx(0.1 / 1.000004)
    assert learning_rate(250_000, 0.1, 1.000004, 1e-6) == pytest.approx(0.1 * 1.000004 ** -250_000)
    # 0.1 / 1.000004**t falls below 1e-6 after ~2.88M updates: then the floor holds
    assert learning_rate(3_000_000, 0.1, 1.000004, 1e-6) == 1e-6
    assert learning_rate(10**9, 0.1, 1.0, 1e-6) == 0.1


def test_momentum_ramp_from_epoch_1_to_250():
    ramp = (1, 250)
    assert momentum(0, 0.5, 0.7, ramp) == 0.5
    assert momentum(1, 0.5, 0.7, ramp) == 0.5
    assert momentum(125, 0.5, 0.7, ramp) == pytest.approx(0.5 + 0.2 * 124 / 249)
    assert momentum(250, 0.5, 0.7, ramp) == pytest.approx(0.7)
    assert momentum(1000, 0.5, 0.7, ramp) == pytest.approx(0.7)
    assert momentum(3, 0.5, 0.7, (2, 2)) == 0.7
