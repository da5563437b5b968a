"""Checkpoints (run/checkpoint.py): atomic writes, safe loading (weights only), one-line errors."""
import pytest
import torch

from advnets.errors import CheckpointError
from advnets.run.checkpoint import load_checkpoint, load_state, save_checkpoint


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
