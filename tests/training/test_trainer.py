"""The training loop: run directories, metrics, samples, and bit-identical resume."""
import json
import os
import pickle
import signal

import pytest
import torch

from advnets.run.checkpoint import load_checkpoint, load_state, save_checkpoint
from advnets.config import make_config
from advnets.errors import CheckpointError, ConfigError, RunError
from advnets.run.loaded import load_run
from advnets.run.layout import CHECKPOINT
from advnets.training import Reporter, Trainer, train


def _state(run_dir):
    payload = load_checkpoint(run_dir / CHECKPOINT)
    return payload


def _assert_same_state(a, b):
    for net in ("generator", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    for opt in ("opt_g", "opt_d"):
        for k, sa in a[opt]["state"].items():
            for name, value in sa.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[opt]["state"][k][name]))
    assert torch.equal(a["rng"], b["rng"])
    assert (a["epoch"], a["g_updates"], a["d_updates"]) == (b["epoch"], b["g_updates"], b["d_updates"])


def _epoch_lines(run_dir, partial=False):
    """The metrics lines without their timings; the lines of a run stopped within an epoch only if `partial`."""
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in l.items() if k not in ("steps_per_s", "seconds")} for l in lines
            if partial or not l.get("partial")]


def test_run_directory_contents(tmp_path, digits_images, tiny_overrides):
    result = train(make_config(overrides=tiny_overrides), tmp_path / "run", train_images=digits_images)
    run = tmp_path / "run"
    assert result.epoch == 2 and result.step == 2 * (len(digits_images) // 20)
    assert json.loads((run / "config.json").read_text())["train"]["batch_size"] == 20
    lines = _epoch_lines(run)
    assert [l["epoch"] for l in lines] == [1, 2]
    assert all(0 < l["d_real"] < 1 and 0 < l["d_fake"] < 1 for l in lines)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    loaded = load_run(run)
    samples = loaded.sample(5, seed=3)
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    assert torch.equal(samples, loaded.sample(5, seed=3))
    assert not any(p.name.endswith(".tmp") for p in run.rglob("*"))
    umask = os.umask(0)
    os.umask(umask)
    for path in (run / "config.json", run / "checkpoints" / "last.pt", run / "samples" / "epoch_0001.png"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask      # not mkstemp's private 0600


def test_training_moves_both_networks(tmp_path, digits_images, tiny_overrides):
    # Both players learn: each network's weights move well away from their initialisation, and D ends up telling
    # data from samples (D(x) > D(G(z)) on average) -- which alone would also hold if G never moved.
    tiny_overrides.update({"train.epochs": 3, "train.optimizer": "adam", "train.lr": 2e-3})
    trainer = Trainer(make_config(overrides=tiny_overrides), tmp_path / "run", train_images=digits_images)
    start = {n: [p.detach().clone() for p in net.parameters()]
             for n, net in (("g", trainer.generator), ("d", trainer.discriminator))}
    result = trainer.run()
    for name, net in (("g", trainer.generator), ("d", trainer.discriminator)):
        moved = sum(((p - p0) ** 2).sum() for p, p0 in zip(net.parameters(), start[name])).sqrt()
        size = sum((p0 ** 2).sum() for p0 in start[name]).sqrt()
        assert moved / size > 0.05, f"{name} barely moved ({moved / size:.4f} of its norm)"
    assert result.last_metrics["d_real"] > result.last_metrics["d_fake"]


@pytest.mark.parametrize("schedule", [
    {},                                                                             # simultaneous, fused, SGD
    {"train.schedule": "alternating", "train.k_discriminator_steps": 2, "train.optimizer": "adam",
     "train.lr": 1e-3, "train.generator_loss": "minimax"},
])
def test_resume_is_bit_identical(tmp_path, digits_images, tiny_overrides, schedule):
    overrides = {**tiny_overrides, **schedule}
    full = tmp_path / "full"
    train(make_config(overrides=overrides), full, train_images=digits_images)

    part = tmp_path / "part"   # stop mid-epoch, then resume to the end
    first = train(make_config(overrides={**overrides, "train.max_steps": 13}), part, train_images=digits_images)
    assert first.step == 13 and first.epoch == 0
    resumed = train(make_config(overrides={**overrides, "train.max_steps": None}), part, resume=True,
                    train_images=digits_images)
    assert resumed.step == train(None, full, resume=True, train_images=digits_images).step
    _assert_same_state(_state(full), _state(part))
    assert _epoch_lines(full) == _epoch_lines(part)
    stop = _epoch_lines(part, partial=True)[0]                   # the stopped run logged its first 13 steps
    assert stop["partial"] and stop["step"] == 13 and 0 < stop["epoch"] < 1
    assert (part / "samples" / "step_00000013.png").is_file()


def test_resume_across_epoch_boundary_and_extend(tmp_path, digits_images, tiny_overrides):
    full = tmp_path / "full"
    train(make_config(overrides=tiny_overrides), full, train_images=digits_images)
    part = tmp_path / "part"
    train(make_config(overrides={**tiny_overrides, "train.epochs": 1}), part, train_images=digits_images)
    train(make_config(overrides=tiny_overrides), part, resume=True, train_images=digits_images)
    _assert_same_state(_state(full), _state(part))


def test_sigint_checkpoints_and_resumes(tmp_path, digits_images, tiny_overrides):
    full = tmp_path / "full"
    train(make_config(overrides=tiny_overrides), full, train_images=digits_images)

    class Interrupt(Reporter):
        def step(self, trainer, stats):
            if trainer.g_updates == 20:
                os.kill(os.getpid(), signal.SIGINT)      # a real Ctrl-C, handled by the trainer

    part = tmp_path / "part"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # a background job starts it ignored
    try:
        result = Trainer(make_config(overrides=tiny_overrides), part, train_images=digits_images,
                         reporter=Interrupt()).run()
        assert result.interrupted and result.step == 20
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    train(None, part, resume=True, train_images=digits_images)
    _assert_same_state(_state(full), _state(part))


def test_new_run_refuses_existing_directory(tmp_path, digits_images, tiny_overrides):
    cfg = make_config(overrides={**tiny_overrides, "train.max_steps": 2})
    train(cfg, tmp_path / "run", train_images=digits_images)
    with pytest.raises(RunError, match="already holds a run"):
        train(cfg, tmp_path / "run", train_images=digits_images)


def test_resume_refuses_changed_settings(tmp_path, digits_images, tiny_overrides):
    train(make_config(overrides={**tiny_overrides, "train.max_steps": 2}), tmp_path / "run",
          train_images=digits_images)
    with pytest.raises(ConfigError, match=r"train.lr: 0.1 -> 0.05"):
        train(make_config(overrides={**tiny_overrides, "train.lr": 0.05}), tmp_path / "run", resume=True,
              train_images=digits_images)
    with pytest.raises(RunError, match="not a run directory"):
        train(None, tmp_path / "nothing", resume=True, train_images=digits_images)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_damaged_and_foreign_checkpoints(tmp_path, digits_images, tiny_overrides):
    run = tmp_path / "run"
    train(make_config(overrides={**tiny_overrides, "train.max_steps": 2}), run, train_images=digits_images)
    ckpt = run / CHECKPOINT
    data = ckpt.read_bytes()

    ckpt.write_bytes(data[: len(data) // 2])                     # truncated
    with pytest.raises(CheckpointError, match="damaged"):
        load_run(run)
    with pytest.raises(CheckpointError, match="damaged"):
        train(None, run, resume=True, train_images=digits_images)

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt.write_bytes(pickle.dumps({"format": "advnets-checkpoint", "x": Exploit()}))
    with pytest.raises(CheckpointError):
        load_run(run)
    assert not marker.exists()                                     # safe loading never ran the payload

    save_checkpoint(ckpt, {"hello": 1})
    with pytest.raises(CheckpointError, match="lacks config"):
        load_run(run)
    torch.save({"format": "advnets-checkpoint", "version": 99}, ckpt)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(ckpt)

    other = make_config(overrides={**tiny_overrides, "model.discriminator_units": [8, 8]})
    from advnets.models import build_models
    _, d_other = build_models(other.model, (1, 8, 8), None)
    ckpt.write_bytes(data)
    payload = load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=r"'hidden.0.bias' has shape \(48,\), this config builds \(24,\)"):
        load_state(d_other, payload["discriminator"], "discriminator", ckpt)


def test_too_small_dataset_is_a_config_error(tmp_path, digits_images, tiny_overrides):
    with pytest.raises(ConfigError, match="fewer than one iteration"):
        Trainer(make_config(overrides={**tiny_overrides, "train.batch_size": 5000}), tmp_path / "r",
                train_images=digits_images)


def test_divergence_stops_before_checkpointing(tmp_path, digits_images, tiny_overrides):
    from advnets.errors import DivergedError

    run = tmp_path / "run"
    train(make_config(overrides={**tiny_overrides, "train.epochs": 1}), run, train_images=digits_images)
    good = _state(run)
    torch.manual_seed(0)
    # continue with NaN weights in G: the next epoch's losses are NaN
    trainer = Trainer(make_config(overrides=tiny_overrides), run, resume=True, train_images=digits_images)
    with torch.no_grad():
        trainer.generator.layers[0].weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="diverged in epoch 2"):
        trainer.run()
    _assert_same_state(good, _state(run))                       # the finite checkpoint is untouched
    assert len(_epoch_lines(run)) == 1                          # and no NaN line was logged
