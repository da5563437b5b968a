"""pylearn2's momentum SGD (v <- mu v - lr g; p <- p + v), and the fused step's two destinations for a gradient."""
import pytest
import torch

from advnets.config import make_config
from advnets.optim import GradientWriter, MomentumSGD, make_optimizer, set_hyperparameters


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


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_add_product_then_apply_equals_step(shape):
    # the fused step hands over g as a product a @ b (a vector b: a matrix-vector product into p flattened)
    p1, p2 = torch.nn.Parameter(torch.ones(shape)), torch.nn.Parameter(torch.ones(shape))
    a, b = MomentumSGD([p1], lr=0.1, momentum=0.5), MomentumSGD([p2], lr=0.1, momentum=0.5)
    left, right = torch.randn(shape[0], 4), torch.randn(4, *shape[1:])
    for _ in range(3):
        p1.grad = left @ right
        a.step()
        b.add_product(p2, left, right)
        b.apply_velocity()
    assert not torch.equal(p1.data, torch.ones(shape))
    assert torch.allclose(p1.data, p2.data)


def test_gradient_writer_writes_the_product_into_grad():
    p = torch.nn.Parameter(torch.zeros(2, 3))
    left, right = torch.randn(2, 4), torch.randn(4, 3)
    for _ in range(2):                                  # written, not accumulated
        GradientWriter.add_product(p, left, right)
    assert torch.allclose(p.grad, left @ right)


def test_make_optimizer_follows_the_config():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(make_config("paper-mnist").train, params), MomentumSGD)
    adam = make_optimizer(make_config(overrides={"train.optimizer": "adam", "train.adam_betas": [0.5, 0.9]}).train,
                          params)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.5, 0.9)
