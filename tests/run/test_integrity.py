"""Integrity of what a run keeps: the checkpoint's checksum, config.json checked against (and recovered from) the
checkpoint's copy, a resume from a non-finite or misshapen checkpoint refused in one line, and the decoded folder
cache keyed on what its files hold (data/folder_cache.py)."""
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advnets.config import make_config
from advnets.data.folder import checked_listing, decode_image
from advnets.data.folder_cache import FolderCacheWarning, find_folder_cache, open_folder_cache
from advnets.errors import CheckpointError, ConfigError
from advnets.run.checkpoint import checkpoint_config, checksum, load_checkpoint, save_checkpoint
from advnets.run.layout import CHECKPOINT, CONFIG, read_config
from advnets.training import Trainer, train
from tests.cli.test_cli import assert_user_error, run_main
from tests.conftest import TINY

RESUME = ["train", "--no-progress", "--resume"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_images):
    """A tiny digits run stopped at step 2 (train.max_steps), with its checkpoint."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(make_config(overrides={**TINY, "train.max_steps": 2, "train.tensorboard": False}), run,
          train_images=digits_images)
    return run


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _rewrite(path, **entries):
    """Rewrite checkpoint `path` with some entries replaced (a new, matching checksum: only the values are wrong)."""
    payload = load_checkpoint(path)
    save_checkpoint(path, {**{k: v for k, v in payload.items() if k not in ("format", "version")}, **entries})


# ----- the checkpoint's checksum

def test_bytes_flipped_in_a_tensor_are_one_line_naming_the_file(run, tmp_path, capsys):
    path = run / CHECKPOINT
    weight = next(iter(load_checkpoint(path)["generator"].values())).numpy().tobytes()     # G's first weights
    data = bytearray(path.read_bytes())
    at = data.find(weight[:400])
    assert at > 0 and data.find(weight[:400], at + 1) == -1       # the tensor's bytes, stored once, uncompressed
    for i in range(at + 100, at + 200):                             # 100 bytes of its data flipped
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged: its contents do not match the checksum") as caught:
        load_checkpoint(path)
    assert str(path) in caught.value.message and "another checkpoint" in caught.value.hint
    for command in ([*RESUME, run, "--max-steps", "4"], ["sample", run, "--out", tmp_path / "x.png"]):
        assert_user_error(run_main(capsys, *command), str(path), "checksum", "resume from another checkpoint")
    assert not (tmp_path / "x.png").exists()


def test_a_checkpoint_written_before_the_checksum_still_loads(run, digits_images):
    path = run / CHECKPOINT
    payload = load_checkpoint(path)
    assert payload["checksum"] == checksum(payload) and payload["checksum"].startswith("sha256:")
    del payload["checksum"]
    torch.save(payload, path)                                       # as advnets wrote it before (same version)
    assert "checksum" not in load_checkpoint(path)
    with Trainer(None, run, resume=True, train_images=digits_images) as trainer:
        assert trainer.g_updates == 2
    torch.save({**payload, "checksum": 12}, path)                   # a checksum that is no checksum
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(path)


def test_checksum_covers_every_entry_in_a_fixed_order():
    a = {"w": torch.arange(6.0).reshape(2, 3), "opt": {"state": {1: {"v": torch.ones(2)}, 0: {}}}, "n": 3}
    reordered = {"n": 3, "opt": {"state": {0: {}, 1: {"v": torch.ones(2)}}}, "w": torch.arange(6.0).reshape(2, 3)}
    assert checksum(a) == checksum(reordered)
    for changed in ({**a, "n": 4}, {**a, "w": torch.arange(6.0).reshape(3, 2)}, {**a, "w": torch.arange(6)},
                    {**a, "opt": {"state": {1: {"v": torch.tensor([1.0, 1.5])}, 0: {}}}}):
        assert checksum(changed) != checksum(a)


# ----- config.json against the checkpoint's copy

@pytest.mark.parametrize("key, value", [("lr", 0.05), ("seed", 7)])
def test_a_hand_edit_of_config_json_is_refused_on_resume(run, capsys, digits_images, key, value):
    data = json.loads((run / CONFIG).read_text())
    old, data["train"][key] = data["train"][key], value
    (run / CONFIG).write_text(json.dumps(data))
    edited = (run / CONFIG).read_text()
    assert_user_error(run_main(capsys, *RESUME, run, "--max-steps", "4"),
                      f"config.json differs from the checkpoint's config in train.{key}: {old!r} -> {value!r}",
                      "restore config.json")
    with pytest.raises(ConfigError, match=f"differs from the checkpoint's config in train.{key}"):
        Trainer(None, run, resume=True, train_images=digits_images)
    # the same change given as --set too: refused like any change of that setting on resume
    assert_user_error(run_main(capsys, *RESUME, run, "--max-steps", "4", "--set", f"train.{key}={value}"),
                      "cannot resume", f"train.{key}: {old!r} -> {value!r}")
    assert (run / CONFIG).read_text() == edited and load_checkpoint(run / CHECKPOINT)["g_updates"] == 2


def test_settings_a_resume_may_change_may_differ_in_config_json(run, digits_images):
    # what a resume with --epochs writes before its first checkpoint, or a hand edit of such a setting
    data = json.loads((run / CONFIG).read_text())
    data["train"]["epochs"], data["train"]["log_every_steps"] = 5, 1
    (run / CONFIG).write_text(json.dumps(data))
    with Trainer(None, run, resume=True, train_images=digits_images) as trainer:
        assert trainer.config.train.epochs == 5 and trainer.config.train.log_every_steps == 1
        assert trainer.config.train.lr == TINY.get("train.lr", make_config().train.lr) and not trainer.notes


DAMAGE = {"missing": None, "invalid JSON": b'{"train": ', "invalid UTF-8": b'{"data": {"dataset": "digits\xff"}}',
          "invalid values": b'{"data": {}, "model": {}, "train": {"lr": "fast"}}', "not an object": b"[1, 2]"}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_missing_or_damaged_config_json_is_recovered_from_the_checkpoint(run, capsys, digits_images, damage):
    if DAMAGE[damage] is None:
        (run / CONFIG).unlink()
    else:
        (run / CONFIG).write_bytes(DAMAGE[damage])
    proc = run_main(capsys, *RESUME, run, "--max-steps", "3")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "recovered from" in line]
    assert len(notes) == 1 and str(run / CONFIG) in notes[0] and str(run / CHECKPOINT) in notes[0], proc.stderr
    saved = load_checkpoint(run / CHECKPOINT)
    assert saved["g_updates"] == 3 and read_config(run) == checkpoint_config(saved, run / CHECKPOINT)
    assert read_config(run).train.max_steps == 3
    # the Python API records the same line
    (run / CONFIG).unlink()
    with Trainer(None, run, resume=True, train_images=digits_images) as trainer:
        assert len(trainer.notes) == 1 and "recovered from" in trainer.notes[0]


# ----- a checkpoint whose state cannot be resumed

@pytest.mark.parametrize("entry", ["generator", "opt_d"])
def test_resuming_a_non_finite_checkpoint_is_refused_in_one_line(run, capsys, digits_images, entry):
    payload = load_checkpoint(run / CHECKPOINT)
    if entry == "generator":
        bad = {k: torch.full_like(v, float("nan")) for k, v in payload["generator"].items()}
    else:
        bad = payload["opt_d"]
        bad["state"][0]["velocity"][0] = float("inf")
    _rewrite(run / CHECKPOINT, **{entry: bad})
    proc = run_main(capsys, *RESUME, run, "--max-steps", "4")
    assert_user_error(proc, str(run / CHECKPOINT), "not finite", entry, "earlier copy of the run")
    assert "still holds the last finite state" not in proc.stderr
    with pytest.raises(CheckpointError, match="not finite"):
        Trainer(None, run, resume=True, train_images=digits_images)


def test_a_velocity_of_the_wrong_shape_is_one_line(run, capsys, digits_images):
    opt_g = load_checkpoint(run / CHECKPOINT)["opt_g"]
    opt_g["state"][0]["velocity"] = torch.zeros(3)
    _rewrite(run / CHECKPOINT, opt_g=opt_g)
    with pytest.raises(CheckpointError, match=r"opt_g 'velocity' of parameter 0 is of shape \(3,\)"):
        Trainer(None, run, resume=True, train_images=digits_images)
    assert_user_error(run_main(capsys, *RESUME, run, "--max-steps", "4"), "does not fit this run", "velocity")


# ----- the decoded folder cache

def _png(path, seed):
    """An 8x8 RGB PNG stored uncompressed: every such file has the same size, whatever its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=0)


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        _png(images / f"{i}.png", i)
    return images


def _cache(folder, cache_dir):
    found, listing = checked_listing(folder)
    return open_folder_cache(found, 8, listing, cache_dir)


def test_a_cache_whose_pixels_were_altered_is_rebuilt(folder, tmp_path):
    cache = _cache(folder, tmp_path / "cache")
    good, path = np.array(cache.pixels), cache.path
    del cache
    with open(path, "r+b") as f:                    # the last 50 pixel values changed, the file's size kept
        f.seek(-50, os.SEEK_END)
        tail = f.read(50)
        f.seek(-50, os.SEEK_END)
        f.write(bytes(255 - b for b in tail))
    found, listing = checked_listing(folder)
    assert find_folder_cache(found, 8, listing, tmp_path / "cache") is None       # never used as is
    with pytest.warns(FolderCacheWarning, match="do not match the checksum"):
        again = open_folder_cache(found, 8, listing, tmp_path / "cache")
    assert again.path == path and np.array_equal(again.pixels, good)
    assert np.array_equal(find_folder_cache(found, 8, listing, tmp_path / "cache").pixels, good)


@pytest.mark.parametrize("how", ["in place", "renamed over it"])
def test_a_source_image_swapped_with_its_size_and_mtime_kept_is_decoded_again(folder, tmp_path, how):
    old = np.array(_cache(folder, tmp_path / "cache").pixels)
    victim = folder / "2.png"
    before = victim.stat()
    time.sleep(0.05)                # file times tick in steps of a few ms: the swap falls in a later one
    if how == "in place":
        _png(victim, 99)
    else:
        _png(folder / ".new.png", 99)
        os.replace(folder / ".new.png", victim)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = victim.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    found, listing = checked_listing(folder)
    new = np.array(open_folder_cache(found, 8, listing, tmp_path / "cache").pixels)        # (6, 3, 8, 8)
    assert np.array_equal(new[2], decode_image(victim, 8).transpose(2, 0, 1)) and not np.array_equal(new[2], old[2])
    assert np.array_equal(np.delete(new, 2, 0), np.delete(old, 2, 0))
    assert len(list((tmp_path / "cache" / "folders").glob("*.npy"))) == 1         # the stale cache was deleted
