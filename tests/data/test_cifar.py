"""CIFAR-10 from its python archive: the real layout built small, the restricted unpickler, download, GCN, training."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import advnets.data.cifar as cifar
from advnets.config import make_config
from advnets.data import for_display, load_split
from advnets.errors import DataError

N = 20                                       # images per batch (10,000 in the real archive)


class _Py2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 `str` opcodes (SHORT_BINSTRING / BINSTRING), as the real batches were
    written (numpy's dtype arguments 'u1' and '|' included), so they load as bytes with encoding="bytes"."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str


def py2_pickle(obj) -> bytes:
    f = io.BytesIO()
    _Py2Pickler(f, protocol=2).dump(obj)
    # numpy 1.x (and so the real archive) names the array-rebuilding function numpy.core.multiarray._reconstruct
    return f.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_batches(seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    rng = np.random.default_rng(seed)
    return {name: (rng.integers(0, 256, (N, 3072), dtype=np.uint8), rng.integers(0, 10, N).tolist())
            for name in cifar.BATCHES}


def batch_file(name: str, data: np.ndarray, labels: list[int]) -> bytes:
    return py2_pickle({b"batch_label": f"{name} of 5".encode(), b"labels": labels, b"data": data,
                       b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]})


def write_archive(path: Path, batches, replace: dict[str, bytes] | None = None) -> Path:
    """A cifar-10-python.tar.gz with the real member layout (batches.meta first, as in the real file)."""
    members = {"batches.meta": py2_pickle({b"num_cases_per_batch": N, b"num_vis": 3072,
                                           b"label_names": [n.encode() for n in cifar.LABEL_NAMES]})}
    members.update({name: batch_file(name, *batches[name]) for name in cifar.BATCHES})
    members.update(replace or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("ADVNETS_MIRROR", raising=False)
    cifar._read_archive.cache_clear()
    cifar._read_folder.cache_clear()


@pytest.fixture
def archive(tmp_path):
    batches = make_batches()
    d = tmp_path / "data"
    d.mkdir()
    return write_archive(d / cifar.ARCHIVE, batches), batches


def test_pixels_labels_and_paper_split(archive, tmp_path):
    path, batches = archive
    train = load_split("cifar10", "train", data_dir=path.parent, cache_dir=tmp_path / "c", download=False)
    valid = load_split("cifar10", "valid", data_dir=path.parent, cache_dir=tmp_path / "c", download=False)
    test = load_split("cifar10", "test", data_dir=path.parent, cache_dir=tmp_path / "c", download=False)
    # train = data_batch_1..4 (images 0-40k of the real archive), valid = data_batch_5, test = test_batch
    assert train.images.shape == (4 * N, 3, 32, 32) and valid.images.shape == test.images.shape == (N, 3, 32, 32)
    assert train.images.dtype == np.float32 and train.images.flags.c_contiguous
    data, labels = batches["data_batch_2"]
    k = N + 7                                                     # the 8th image of the second batch
    for c, r, col in [(0, 0, 0), (1, 5, 31), (2, 31, 2), (0, 17, 9)]:
        # one row of a batch: 1,024 red, then green, then blue values, each 32x32 row-major
        assert train.images[k, c, r, col] == np.float32(data[7, c * 1024 + r * 32 + col]) / np.float32(255)
    assert np.array_equal(train.images[k].reshape(-1) * 255, data[7].astype(np.float32))
    assert train.labels[N:2 * N].tolist() == labels and train.labels.dtype == np.int64
    assert np.array_equal(valid.images.reshape(N, -1) * 255, batches["data_batch_5"][0].astype(np.float32))
    assert np.array_equal(test.images.reshape(N, -1) * 255, batches["test_batch"][0].astype(np.float32))
    assert test.labels.tolist() == batches["test_batch"][1]
    assert not (tmp_path / "c").exists()                          # found locally: nothing cached or downloaded


def test_extracted_folder_and_archive_path(archive, tmp_path):
    path, batches = archive
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    from_folder = load_split("cifar10", "valid", data_dir=tmp_path / "x", download=False)      # parent of the folder
    inner = load_split("cifar10", "valid", data_dir=tmp_path / "x" / cifar.FOLDER, download=False)
    from_file = load_split("cifar10", "valid", data_dir=path, download=False)                 # the archive itself
    assert np.array_equal(from_folder.images, from_file.images) and np.array_equal(inner.images, from_file.images)


def test_python3_pickles_also_load():
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for protocol in (2, 4):                        # protocol 2 from Python 3 writes bytes through _codecs.encode
        got, labels = cifar.load_batch(pickle.dumps({b"data": data, b"labels": [3, 9]}, protocol=protocol), "b")
        assert np.array_equal(got, data) and labels.tolist() == [3, 9]


def test_code_in_a_pickle_is_never_run(archive, tmp_path):
    path, batches = archive
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2)
    write_archive(path, batches, {"data_batch_3": evil})
    with pytest.raises(DataError) as info:
        load_split("cifar10", "train", data_dir=path.parent, download=False)
    assert "system" in info.value.message and "refusing" in info.value.message and "data_batch_3" in info.value.message
    assert not marker.exists()
    # other callables a pickle could reach for are refused too; latin-1 is the only codec allowed
    for payload in (b"cbuiltins\neval\n(S'1+1'\ntR.", b"c_codecs\nencode\n(Vx\nVrot13\ntR."):
        with pytest.raises(DataError, match="cannot read CIFAR-10 batch"):
            cifar.load_batch(payload, "evil")


@pytest.mark.parametrize("damage, expected", [
    ("truncate", "not a readable tar.gz archive"),
    ("drop", "lacks cifar-10-batches-py/test_batch"),
    ("shape", "expected uint8 (N, 3072)"),
])
def test_damaged_archives(archive, damage, expected):
    path, batches = archive
    if damage == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "drop":
        with tarfile.open(path, "w:gz") as tar:
            for name in cifar.TRAIN_BATCHES:
                raw = batch_file(name, *batches[name])
                info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        write_archive(path, batches, {"data_batch_1": py2_pickle({b"data": np.zeros((N, 1024), np.uint8),
                                                                   b"labels": [0] * N})})
    with pytest.raises(DataError) as info:
        load_split("cifar10", "train", data_dir=path.parent, download=False)
    assert expected in info.value.message and "\n" not in str(info.value)


def test_missing_archive_offline(tmp_path):
    with pytest.raises(DataError) as info:
        load_split("cifar10", "train", data_dir=tmp_path / "nothing", cache_dir=tmp_path, download=False)
    assert cifar.ARCHIVE in info.value.message and "--data-dir" in info.value.hint
    assert "cifar-10-batches-py" in info.value.hint and "cs.toronto.edu" in info.value.hint


def _serve(root: Path):
    handler = type("H", (http.server.SimpleHTTPRequestHandler,),
                   {"__init__": lambda self, *a, **k: http.server.SimpleHTTPRequestHandler.__init__(
                       self, *a, directory=str(root), **k), "log_message": lambda self, *a: None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def test_download_is_md5_checked(archive, tmp_path, monkeypatch):
    path, batches = archive
    httpd = _serve(path.parent)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        with pytest.raises(DataError, match="checksum mismatch"):          # the real md5 does not match ours
            load_split("cifar10", "test", cache_dir=tmp_path / "c", mirrors=[url])
        assert not any((tmp_path / "c").rglob("*.tar.gz"))
        monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(path.read_bytes()).hexdigest())
        monkeypatch.setenv("ADVNETS_MIRROR", url)
        test = load_split("cifar10", "test", cache_dir=tmp_path / "c")
        assert (tmp_path / "c" / "cifar10" / cifar.ARCHIVE).read_bytes() == path.read_bytes()
        assert np.array_equal(test.images.reshape(N, -1) * 255, batches["test_batch"][0].astype(np.float32))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_global_contrast_normalisation_and_display(archive):
    path, batches = archive
    split = load_split("cifar10", "test", data_dir=path.parent, download=False, contrast_normalize=55.0)
    x = batches["test_batch"][0][3].astype(np.float64)               # pylearn2: (x - mean) / ||x - mean|| * 55
    expected = (x - x.mean()) / np.sqrt(((x - x.mean()) ** 2).sum()) * 55
    assert np.allclose(split.images[3].reshape(-1), expected, atol=1e-5)
    flat = split.images.reshape(N, -1)
    assert np.allclose(flat.mean(1), 0, atol=1e-5) and np.allclose(np.linalg.norm(flat, axis=1), 55, rtol=1e-5)
    shown = for_display(split.images, make_config("paper-cifar10-conv").data)
    assert shown.min() >= 0 and shown.max() <= 1
    assert np.allclose(np.abs(shown.reshape(N, -1) - 0.5).max(1), 0.5)   # each image spans its own range
    grey = load_split("cifar10", "test", data_dir=path.parent, download=False, channels=1)
    assert grey.images.shape == (N, 1, 32, 32)
    r, g, b = (batches["test_batch"][0][0, c * 1024] / 255 for c in range(3))
    assert grey.images[0, 0, 0, 0] == pytest.approx(0.299 * r + 0.587 * g + 0.114 * b, abs=1e-6)


TINY_CONV = {"data.dataset": "cifar10", "model.noise_dim": 8, "model.generator_hidden": [32, 400],
             "model.generator_conv_channels": 4, "model.discriminator_conv_units": [4, 4, 8],
             "model.discriminator_units": [16], "model.discriminator_pieces": 2, "train.batch_size": 10,
             "train.grid_size": 3, "train.epochs": 1}


def test_train_conv_preset_on_the_archive(archive, tmp_path, capsys):
    from advnets.cli import main
    from advnets.run.loaded import load_run
    from advnets.training import train

    path, _ = archive
    config = make_config("paper-cifar10-conv", {**TINY_CONV, "data.data_dir": str(path.parent)})
    result = train(config, tmp_path / "run")
    assert result.step == 8                                       # 80 training images, batch 10
    from PIL import Image

    with Image.open(tmp_path / "run" / "samples" / "epoch_0001.png") as grid:
        assert grid.mode == "RGB" and grid.size == (2 + 3 * 34, 2 + 3 * 34)
    run = load_run(tmp_path / "run")
    assert run.sample(4).shape == (4, 3, 32, 32)
    # eval and both figures on the RGB, contrast-normalised run
    assert main(["eval", str(tmp_path / "run"), "--n-samples", "30", "--sigmas", "0.5,1,2"]) == 0
    assert main(["figure", "samples", str(tmp_path / "run"), "--rows", "2", "--cols", "3"]) == 0
    assert main(["figure", "interpolate", str(tmp_path / "run"), "--rows", "2", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "cifar10  LL" in out and "samples.png" in out
    with Image.open(tmp_path / "run" / "figures" / "samples.png") as fig:
        assert fig.mode == "RGB"
