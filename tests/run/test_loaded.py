"""Loading a trained run: its networks in evaluation mode, seeded sampling, classes of a conditional run."""
import pytest
import torch

from advnets.config import make_config
from advnets.errors import ConfigError, RunError
from advnets.run.loaded import load_run
from advnets.training import train


def test_load_run_samples_reproducibly(tmp_path, digits_images, tiny_overrides):
    train(make_config(overrides={**tiny_overrides, "train.max_steps": 3}), tmp_path / "run",
          train_images=digits_images)
    run = load_run(tmp_path / "run")
    assert not run.generator.training and not run.discriminator.training
    assert (run.epoch, run.step, run.image_shape, run.num_classes) == (0, 3, (1, 8, 8), 0)
    a, b = run.sample(7, seed=1, batch_size=3), run.sample(7, seed=1)
    assert a.shape == (7, 1, 8, 8) and torch.allclose(a, b, atol=1e-6)   # batching does not change the draws
    assert not torch.equal(a, run.sample(7, seed=2))
    with pytest.raises(RunError, match="not a conditional run"):
        run.sample(2, labels=1)
    with pytest.raises(RunError, match="not a run directory"):
        load_run(tmp_path)


@pytest.mark.parametrize("damage", ["missing", "not json"])
def test_a_run_without_a_readable_config_json_loads_with_its_checkpoints_copy(tmp_path, digits_images, tiny_overrides,
                                                                            damage):
    config = make_config(overrides={**tiny_overrides, "train.max_steps": 3, "train.seed": 5})
    train(config, tmp_path / "run", train_images=digits_images)
    expected = load_run(tmp_path / "run").sample(4, seed=1)
    if damage == "missing":
        (tmp_path / "run" / "config.json").unlink()
    else:
        (tmp_path / "run" / "config.json").write_text("{ half a file")
    run = load_run(tmp_path / "run")
    assert run.config.train.seed == 5 and run.config.model == config.model
    assert torch.equal(run.sample(4, seed=1), expected)
    (tmp_path / "run" / "checkpoints" / "last.pt").unlink()            # nothing left to recover it from
    with pytest.raises(RunError if damage == "missing" else ConfigError, match="not a run directory|not valid JSON"):
        load_run(tmp_path / "run")
