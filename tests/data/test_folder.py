"""A folder of the user's own PNG / JPEG files as a dataset: decoding, sizes, channels, broken files, training."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import advnets.data.folder as folder
from advnets.data import load_split
from advnets.errors import DataError

SIDE = 16


def grey_pattern(i: int) -> np.ndarray:
    """(16, 16) uint8 that differs per image and per pixel."""
    y, x = np.mgrid[:SIDE, :SIDE]
    return ((x * 13 + y * 7 + i * 29) % 256).astype(np.uint8)


@pytest.fixture(autouse=True)
def _fresh():
    folder._decode_all.cache_clear()


@pytest.fixture
def grey_dir(tmp_path):
    """24 grey 16x16 PNGs in two sub-folders, 6 grey 40x24 JPEGs, a broken file, a truncated PNG, hidden files."""
    d = tmp_path / "faces"
    (d / "a").mkdir(parents=True)
    (d / "b" / "deeper").mkdir(parents=True)
    for i in range(24):
        Image.fromarray(grey_pattern(i), "L").save(d / ("a" if i < 12 else "b/deeper") / f"img_{i:02d}.png")
    for i in range(6):
        Image.fromarray(np.full((24, 40), 40 * i, np.uint8), "L").save(d / "b" / f"wide_{i}.JPG", quality=95)
    (d / "b" / "broken.png").write_bytes(b"this is not an image")
    raw = (d / "a" / "img_00.png").read_bytes()
    (d / "a" / "zz_truncated.png").write_bytes(raw[: len(raw) // 2])
    (d / ".hidden.png").write_bytes(b"ignored")
    (d / "notes.txt").write_text("ignored")
    return d


def load_all(d, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = {s: load_split("folder", s, data_dir=d, **kwargs) for s in ("train", "valid", "test")}
    return splits, [w for w in caught if issubclass(w.category, folder.UnreadableImagesWarning)]


def test_decodes_every_readable_file_and_counts_the_rest(grey_dir):
    splits, caught = load_all(grey_dir, image_size=SIDE)
    assert len(caught) == 1                                         # one warning for the whole folder, once
    message = str(caught[0].message)
    assert "skipped 2 of 32 files" in message and "broken.png" in message and "zz_truncated.png" in message
    sizes = {s: len(v) for s, v in splits.items()}
    assert sizes == {"train": 26, "valid": 2, "test": 2}            # 30 readable: 5% (1.5 -> 2) each held out
    for split in splits.values():
        assert split.images.shape[1:] == (1, SIDE, SIDE) and split.images.dtype == np.float32
    # known pixel values: files at the chosen size are not resampled; order is the sorted relative path
    listing = [p.relative_to(grey_dir).as_posix() for p in folder.list_images(grey_dir)]
    assert listing[:2] == ["a/img_00.png", "a/img_01.png"] and "notes.txt" not in "".join(listing)
    rows = folder.split_indices(30)
    readable = [name for name in listing if "broken" not in name and "truncated" not in name]
    for split in ("train", "valid", "test"):
        for j, row in enumerate(rows[split]):
            name = readable[row]
            assert splits[split].labels[j] == "ab".index(name[0])     # the top-level subfolder is the class
            if name.endswith(".png"):
                i = int(name[-6:-4])
                assert np.array_equal(splits[split].images[j, 0] * 255, grey_pattern(i).astype(np.float32))
            else:                                                   # 40x24 constant JPEG: scaled and cropped
                i = int(name[-5])
                assert np.allclose(splits[split].images[j] * 255, 40 * i, atol=2)


def test_sizes_channels_and_colour(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    rgb = np.zeros((30, 20, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50                              # a purple-ish 20 wide x 30 tall image
    Image.fromarray(rgb, "RGB").save(d / "colour.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (0, 0, 0, 255)                                       # top half opaque black, bottom transparent
    Image.fromarray(rgba, "RGBA").save(d / "sprite.png")
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)    # 16-bit grey, up to 63,000
    Image.fromarray(deep).save(d / "deep.png")
    splits, caught = load_all(d, image_size=8)
    assert not caught
    images = np.concatenate([v.images for v in splits.values()])   # 3 images: 1 train, 1 valid, 1 test
    assert images.shape == (3, 3, 8, 8)                             # auto channels: one colour image makes RGB
    by_name = dict(zip(["colour", "deep", "sprite"], folder._decode_all.__wrapped__(
        str(d.resolve()), 8, 0, folder._listing_key(d.resolve()))[0]))
    assert np.allclose(by_name["colour"][:, 3, 3] * 255, [200, 0, 50])
    assert np.allclose(by_name["sprite"][:, 1, 1], 0) and np.allclose(by_name["sprite"][:, 6, 1], 1)  # on white
    assert by_name["deep"][0, 7, 7] == pytest.approx(63000 / 65535, abs=1 / 255)
    grey, _ = load_all(d, image_size=8, channels=1)
    assert {v.images.shape[1] for v in grey.values()} == {1}
    big, _ = load_all(d)                                            # default size 32
    assert big["train"].images.shape[2:] == (32, 32)


def test_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="needs the folder of images") as info:
        load_split("folder", "train")
    assert "--data-dir" in info.value.hint
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG or JPEG files found"):
        load_split("folder", "train", data_dir=tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.warns(folder.UnreadableImagesWarning), pytest.raises(DataError, match="none of the 1 image files"):
        load_split("folder", "train", data_dir=tmp_path / "bad")
    with pytest.raises(DataError, match="does not exist"):
        load_split("folder", "train", data_dir=tmp_path / "nowhere")


def test_train_from_the_command_line(grey_dir, tmp_path, capsys):
    from advnets.cli import main

    run = tmp_path / "run"
    with pytest.warns(folder.UnreadableImagesWarning):
        code = main(["train", "--dataset", "folder", "--data-dir", str(grey_dir), "--epochs", "2", "--out", str(run),
                     "--no-progress", "--set", "data.image_size=16", "--set", "model.noise_dim=8",
                     "--set", "model.generator_hidden=32,32", "--set", "model.discriminator_units=16,16",
                     "--set", "train.batch_size=13", "--set", "train.grid_size=3"])
    out = capsys.readouterr().out
    assert code == 0 and "folder, 26 training examples" in out and "fused step" in out
    with Image.open(run / "samples" / "epoch_0002.png") as grid:
        assert grid.mode == "L" and grid.size == (2 + 3 * 18, 2 + 3 * 18)
    assert main(["eval", str(run), "--n-samples", "50", "--sigmas", "0.1,0.3,1"]) == 0
    assert main(["figure", "samples", str(run), "--rows", "1", "--cols", "3"]) == 0


def test_any_source_can_be_resized_and_coloured():
    # the same transforms apply to array sources: 8x8 digits -> 3 x 16 x 16, values kept in [0, 1]
    digits = load_split("digits", "valid")
    big = load_split("digits", "valid", image_size=16, channels=3)
    assert big.images.shape == (len(digits), 3, 16, 16) and np.array_equal(big.labels, digits.labels)
    assert 0 <= big.images.min() and big.images.max() <= 1
    assert np.array_equal(big.images[:, 0], big.images[:, 2])                  # grey repeated into R, G, B
    # a 2x bilinear upscale keeps each image's mean brightness and never overshoots its brightest pixel
    assert np.allclose(big.images[:, 0].mean((1, 2)), digits.images[:, 0].mean((1, 2)), atol=1e-3)
    assert (big.images.max((1, 2, 3)) <= digits.images.max((1, 2, 3)) + 1e-6).all()


def test_class_labels_come_from_the_subfolders(tmp_path, tiny_overrides):
    # two subfolders: labelled 0, 1 in sorted order, and a conditional run trains on them; a loose file at the
    # top makes the folder unlabelled, and --conditional then says so in one line
    d = tmp_path / "shapes"
    for name, value in (("squares", 255), ("blank", 0)):
        (d / name).mkdir(parents=True)
        for i in range(30):
            Image.fromarray(np.full((SIDE, SIDE), value if i % 2 else value // 2, np.uint8), "L").save(
                d / name / f"{i:02d}.png")
    train = load_split("folder", "train", data_dir=d, image_size=SIDE)
    assert set(train.labels.tolist()) == {0, 1}
    assert np.all((train.images.max((1, 2, 3)) > 0.4) == (train.labels == 1))    # blank 0, squares 1
    from advnets.config import make_config
    from advnets.training import Trainer

    config = make_config(overrides={**tiny_overrides, "data.dataset": "folder", "data.data_dir": str(d),
                                    "data.image_size": SIDE, "model.conditional": True, "train.max_steps": 2})
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.data.num_classes == 2
    trainer.run()
    Image.fromarray(np.zeros((SIDE, SIDE), np.uint8), "L").save(d / "loose.png")
    assert load_split("folder", "train", data_dir=d, image_size=SIDE).labels is None
    from advnets.errors import DataError

    with pytest.raises(DataError, match="needs class labels"):
        Trainer(config, tmp_path / "run2")
