"""Checkpoints: atomic writes, safe loading (weights only), one-line errors, and the full training state."""
import pickle

import pytest
import torch

from advnets.config import make_config
from advnets.errors import CheckpointError, DivergedError
from advnets.training import Trainer
from advnets.training.checkpoint import RESUME_KEYS, load_checkpoint, load_state, save_checkpoint


def test_round_trip_and_required_keys(tmp_path):
    path = tmp_path / "c" / "x.pt"
    save_checkpoint(path, {"config": "{}", "w": torch.arange(3.0), "epoch": 2})
    payload = load_checkpoint(path, required=("w", "epoch"))
    assert torch.equal(payload["w"], torch.arange(3.0)) and payload["epoch"] == 2
    assert list(path.parent.iterdir()) == [path]                          # no temporary file left
    with pytest.raises(CheckpointError, match="lacks generator"):
        load_checkpoint(path, required=("generator",))


def test_refuses_pickles_and_foreign_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    bad = tmp_path / "evil.pt"
    torch.save({"format": "advnets-checkpoint", "version": 1, "x": Evil()}, bad)
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        load_checkpoint(bad, required=())
    assert not (tmp_path / "pwned").exists()                              # weights_only: nothing executed
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not an advnets checkpoint"):
        load_checkpoint(other, required=())
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "text.pt", required=())
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_load_state_names_the_first_mismatch(tmp_path):
    small, big = torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)
    with pytest.raises(CheckpointError, match=r"'bias' has shape \(4,\), this config builds \(3,\)"):
        load_state(small, big.state_dict(), "generator", tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="'bias' is missing"):
        load_state(small, {"weight": small.weight.detach()}, "generator", tmp_path / "x.pt")


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
