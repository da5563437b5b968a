"""The memmap store (training/streaming.py, data/folder_cache.py): same minibatches and same run as the memory store,
exact resume mid-epoch, a damaged or stale cache decoded again, and the choice of store."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import advnets.data.folder as folder
from advnets.config import make_config
from advnets.data.folder_cache import FolderCacheWarning, cache_stem, open_folder_cache
from advnets.errors import ConfigError
from advnets.training import Trainer, train
from advnets.training import batches, storage
from advnets.run.checkpoint import load_checkpoint
from advnets.run.layout import CHECKPOINT
from tests.conftest import TINY

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path / "cache"))
    folder._decode_all.cache_clear()


def write_folder(path, n=64, colour=True, classes=2, seed=0):
    """n random 8x8 PNGs (RGB or grey) in `classes` subfolders (0: all at the top)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = path / f"class{i % classes}" if classes else path
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (8, 8, 3) if colour else (8, 8), dtype=np.uint8)
        Image.fromarray(pixels, "RGB" if colour else "L").save(sub / f"{i:03d}.png")
    return path


def config(data_dir, **overrides):
    """The tiny config (conftest.TINY) on the image folder `data_dir`, at batch 8."""
    return make_config(overrides={
        **TINY, "data.dataset": "folder", "data.data_dir": str(data_dir), "data.image_size": 8, "data.workers": 0,
        "train.batch_size": 8, "train.tensorboard": False, **overrides})


def params(trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for net in (trainer.generator, trainer.discriminator) for p in net.parameters()]


def trained(cfg) -> list[torch.Tensor]:
    with Trainer(cfg, None) as t:
        assert t.data.storage == cfg.data.storage
        t.run()
        return params(t)


@pytest.mark.parametrize("settings", [
    {"data.workers": 0},
    {"data.workers": 2},
    # grey from colour (converted in the workers), a conditional model, k = 2 minibatches per iteration
    {"data.workers": 2, "data.channels": 1, "model.conditional": True, "train.schedule": "alternating",
     "train.k_discriminator_steps": 2, "train.batch_size": 4},
])
def test_memmap_run_equals_the_memory_run(tmp_path, settings):
    d = write_folder(tmp_path / "pics")
    memory = trained(config(d, **settings, **{"data.storage": "memory"}))
    streamed = trained(config(d, **settings, **{"data.storage": "memmap"}))
    assert all(torch.equal(a, b) for a, b in zip(memory, streamed))
    start = trained(config(d, **settings, **{"data.storage": "memory", "train.epochs": 1}))
    assert any(not torch.equal(a, b) for a, b in zip(memory, start))        # the runs did train


def test_minibatches_are_the_memory_store_rows_in_any_order_and_part(tmp_path):
    d = write_folder(tmp_path / "pics", colour=False)
    cfg = config(d, **{"data.storage": "memmap", "data.channels": 3, "data.workers": 1, "model.conditional": True})
    images, labels = folder.folder_split("train", d, 8, 3)
    memory = batches.TrainingData.prepare(cfg, images, labels, torch.device("cpu"))
    streamed, _ = storage.load_training_data(cfg, torch.device("cpu"))
    try:
        assert len(streamed) == len(memory) == 58 and streamed.image_shape == (3, 8, 8)
        perm = torch.randperm(58, generator=torch.Generator().manual_seed(1))
        for index, part in [(0, slice(None)), (1, slice(None)), (5, slice(None)), (2, slice(4, 8)), (3, slice(4, 8)),
                            (0, slice(0, 4))]:            # in order, a jump, another part, back to the start
            x, c = streamed.batch(perm, index, 8, part)
            y, e = memory.batch(perm, index, 8, part)
            assert x.dtype == torch.float32 and torch.equal(x, y) and torch.equal(c, e)
        assert torch.equal(streamed.output_bias(cfg.model), memory.output_bias(cfg.model))
    finally:
        streamed.close()


def test_resume_mid_epoch_continues_exactly(tmp_path):
    d = write_folder(tmp_path / "pics")
    full = tmp_path / "full"
    train(config(d, **{"data.storage": "memory"}), full)
    part = tmp_path / "part"                       # 7 iterations per epoch: stop in the first, then in the second
    assert train(config(d, **{"data.storage": "memmap", "train.max_steps": 3}), part).step == 3
    assert train(config(d, **{"data.storage": "memmap", "data.workers": 2, "train.max_steps": 10}), part,
                 resume=True).step == 10
    assert train(config(d, **{"data.storage": "memmap", "train.max_steps": None}), part, resume=True).step == 14
    a, b = load_checkpoint(full / CHECKPOINT), load_checkpoint(part / CHECKPOINT)
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    assert torch.equal(a["rng"], b["rng"])


def test_damaged_cache_is_decoded_again(tmp_path):
    d = write_folder(tmp_path / "pics")
    listing = folder.checked_listing(d)[1]
    good = np.array(open_folder_cache(d.resolve(), 8, listing).pixels)
    stem = cache_stem(d.resolve(), 8, listing)
    npy = stem.with_suffix(".npy")
    for damage in (lambda: npy.write_bytes(npy.read_bytes()[:500]),                       # truncated
                   lambda: npy.write_bytes(b"not a numpy file at all"),                      # garbage
                   lambda: stem.with_suffix(".json").write_text("{"),                        # broken description
                   lambda: npy.unlink()):                                                     # half deleted
        damage()
        with pytest.warns(FolderCacheWarning, match="decoding .* again"):
            cache = open_folder_cache(d.resolve(), 8, listing)
        assert np.array_equal(cache.pixels, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # a whole cache opens without a word
        assert np.array_equal(open_folder_cache(d.resolve(), 8, listing).pixels, good)
    assert sorted(p.name for p in stem.parent.iterdir()) == sorted(
        [stem.name + ".npy", stem.name + ".json", stem.name + ".labels.npy"])          # no temporary left


def test_changed_folder_is_decoded_again_and_the_old_cache_removed(tmp_path):
    d = write_folder(tmp_path / "pics", n=40, classes=0)
    data, _ = storage.load_training_data(config(d, **{"data.storage": "memmap"}), torch.device("cpu"))
    old = data.path
    assert len(data) == 36 and data.labels is None
    write_folder(d, n=1, classes=0, seed=7)            # 000.png rewritten with other pixels
    Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save(d / "new.png")
    data, _ = storage.load_training_data(config(d, **{"data.storage": "memmap"}), torch.device("cpu"))
    assert data.path != old and not old.exists() and len(data) == 37
    meta = json.loads(data.path.with_suffix(".json").read_text())
    assert (meta["files"], meta["images"], meta["channels"]) == (41, 41, 3)
    assert np.array_equal(np.load(data.path)[0].transpose(1, 2, 0), np.asarray(Image.open(d / "000.png")))


def test_unreadable_files_are_skipped_and_warned_about_on_every_start(tmp_path):
    d = write_folder(tmp_path / "pics", n=20, classes=0)
    (d / "broken.png").write_bytes(b"nope")
    for _ in range(2):                                  # decoding, then from the cache
        with pytest.warns(folder.UnreadableImagesWarning, match="skipped 1 of 21 files"):
            data, _ = storage.load_training_data(config(d, **{"data.storage": "memmap"}), torch.device("cpu"))
        assert len(data) == 18


def test_splits_are_read_from_the_cache_once_there_is_one(tmp_path, monkeypatch):
    """eval, coverage and the memory store load splits through registry.load_split: once a memmap run has decoded
    the folder, they read its rows from the cache, with the values decoding gives, and decode nothing."""
    from advnets.data import load_split

    d = write_folder(tmp_path / "pics", n=80)
    settings = [{}, {"channels": 1}, {"channels": 1, "contrast_normalize": 1.0}]
    decoded = {(split, i): load_split("folder", split, data_dir=d, image_size=8, **kw)
               for split in ("valid", "test", "train") for i, kw in enumerate(settings)}
    storage.load_training_data(config(d, **{"data.storage": "memmap"}), torch.device("cpu"))    # builds the cache
    folder._decode_all.cache_clear()

    def no_decoding(path, size):
        raise AssertionError("decoded a file although the cache holds it")
    monkeypatch.setattr(folder, "decode_image", no_decoding)
    for (split, i), ref in decoded.items():
        got = load_split("folder", split, data_dir=d, image_size=8, **settings[i])
        assert got.images.dtype == np.float32 and np.array_equal(got.images, ref.images), (split, settings[i])
        assert np.array_equal(got.labels, ref.labels)
    assert [len(decoded[s, 0]) for s in ("valid", "test", "train")] == [4, 4, 72]


def test_choice_of_store(tmp_path, monkeypatch):
    d = write_folder(tmp_path / "pics", n=20, classes=0)
    cpu = torch.device("cpu")
    assert storage.choose_storage(config(d), cpu, 20) == "memory"               # auto: 20 x 3 x 8 x 8 x 4 bytes
    monkeypatch.setattr(storage, "memory_budget", lambda device: 20 * 3 * 8 * 8 * 4 - 1)
    assert storage.choose_storage(config(d), cpu, 20) == "memmap"
    assert storage.load_training_data(config(d), cpu)[0].storage == "memmap"
    assert storage.choose_storage(config(d, **{"data.storage": "memory"}), cpu, 20) == "memory"
    assert storage.choose_storage(make_config(overrides={"data.dataset": "digits"}), cpu, 10**9) == "memory"


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.storage is 'memap'") as info:
        make_config(overrides={"data.storage": "memap"})
    assert "did you mean 'memmap'" in info.value.hint
    with pytest.raises(ConfigError, match="reads a decoded image folder"):
        make_config(overrides={"data.dataset": "digits", "data.storage": "memmap"})
    with pytest.raises(ConfigError, match="data.workers must be >= 0"):
        make_config(overrides={"data.workers": -1})


def test_command_line_says_which_store(tmp_path, monkeypatch, capsys):
    from advnets.cli import main

    d = write_folder(tmp_path / "pics", n=20, classes=0)
    args = ["train", "--dataset", "folder", "--data-dir", str(d), "--max-steps", "2", "--no-progress",
            "--no-tensorboard", "--set", "data.image_size=8", "--set", "model.noise_dim=8", "--set",
            "model.generator_hidden=16", "--set", "model.discriminator_units=8", "--set", "train.batch_size=6"]
    assert main([*args, "--out", str(tmp_path / "a"), "--set", "data.storage=memmap", "--set", "data.workers=0"]) == 0
    assert "18 training examples (memmap: " in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "18 training examples (memory: one tensor on the device)" in capsys.readouterr().out
    monkeypatch.setenv("ADVNETS_DATA", str(d / "000.png"))        # the cache under a file: one line, exit 1
    assert main([*args, "--out", str(tmp_path / "c"), "--set", "data.storage=memmap"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and "Traceback" not in err


@CUDA
def test_memmap_run_equals_the_memory_run_on_cuda(tmp_path):
    d = write_folder(tmp_path / "pics")
    runs = [trained(config(d, **{"data.storage": s, "data.workers": 2, "train.device": "cuda"}))
            for s in ("memory", "memmap")]
    assert all(a.device.type == "cuda" and torch.equal(a, b) for a, b in zip(*runs))
