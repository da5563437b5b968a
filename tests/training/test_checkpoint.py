"""The training state in a checkpoint (TrainingState.state_dict(), training/state.py): everything a resume needs, and
never a diverged state."""
import pytest
import torch

from advnets.config import make_config
from advnets.errors import DivergedError
from advnets.run.checkpoint import RESUME_KEYS, load_checkpoint
from advnets.training import Trainer


def test_training_state_holds_everything_a_resume_needs(tmp_path, digits_images, tiny_overrides):
    trainer = Trainer(make_config(overrides={**tiny_overrides, "train.max_steps": 5}), tmp_path / "run",
                      train_images=digits_images)
    trainer.run()
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", required=RESUME_KEYS)
    assert (payload["g_updates"], payload["d_updates"], payload["position"], payload["epoch"]) == (5, 5, 5, 0)
    state = trainer.state_dict()
    for key in ("rng", "fixed_noise", "perm"):
        assert torch.equal(payload[key], state[key])


def test_a_non_finite_state_is_never_saved(tmp_path, digits_images, tiny_overrides):
    trainer = Trainer(make_config(overrides=tiny_overrides), tmp_path / "run", train_images=digits_images)
    with torch.no_grad():
        trainer.generator.layers[0].weight[0, 0] = float("nan")
    with pytest.raises(DivergedError, match="no checkpoint was written before it"):
        trainer.save()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
