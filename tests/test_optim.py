"""pylearn2's momentum SGD (v <- mu v - lr g; p <- p + v) and the velocity targets of the fused step."""
import pytest
import torch

from advnets.config import make_config
from advnets.optim import MomentumSGD, make_optimizer, set_hyperparameters


def test_momentum_sgd_is_pylearn2s_rule():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = MomentumSGD([p], lr=0.1, momentum=0.5)
    p.grad = torch.tensor([1.0, 1.0])
    opt.step()                                  # v = -0.1 g = [-0.1, -0.1]; p = [0.9, -2.1]
    assert torch.allclose(p.data, torch.tensor([0.9, -2.1]))
    set_hyperparameters(opt, 0.2, 0.7)
    p.grad = torch.tensor([2.0, 0.0])
    opt.step()                                  # v = 0.7 v - 0.2 g = [-0.47, -0.07]
    assert torch.allclose(p.data, torch.tensor([0.43, -2.17]))
    assert torch.allclose(opt.state[p]["velocity"], torch.tensor([-0.47, -0.07]))


def test_differs_from_torch_sgd_when_the_learning_rate_changes():
    # torch.optim.SGD keeps lr outside the velocity; with a changing lr the two rules part ways (why we have ours)
    ours, theirs = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    a, b = MomentumSGD([ours], lr=1.0, momentum=0.5), torch.optim.SGD([theirs], lr=1.0, momentum=0.5)
    for lr in (1.0, 0.1):
        set_hyperparameters(a, lr, 0.5)
        set_hyperparameters(b, lr, 0.5)
        ours.grad, theirs.grad = torch.ones(1), torch.ones(1)
        a.step()
        b.step()
    assert ours.item() == pytest.approx(-1.0 - 0.6)        # v2 = 0.5 * -1 - 0.1
    assert theirs.item() == pytest.approx(-1.0 - 0.15)     # buf2 = 0.5 * 1 + 1; p -= 0.1 * buf2


def test_velocity_target_then_apply_equals_step():
    p1, p2 = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    a, b = MomentumSGD([p1], lr=0.1, momentum=0.5), MomentumSGD([p2], lr=0.1, momentum=0.5)
    g = torch.tensor([1.0, -2.0, 3.0])
    for _ in range(3):
        p1.grad = g.clone()
        a.step()
        v, beta, alpha = b.velocity_target(p2)   # the fused step writes v <- beta v + alpha g itself
        v.mul_(beta).add_(g, alpha=alpha)
        b.apply_velocity()
    assert torch.allclose(p1.data, p2.data)


def test_make_optimizer_follows_the_config():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(make_config("paper-mnist").train, params), MomentumSGD)
    adam = make_optimizer(make_config(overrides={"train.optimizer": "adam", "train.adam_betas": [0.5, 0.9]}).train,
                          params)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.5, 0.9)
