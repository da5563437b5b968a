"""Tests for advnets.data: IDX reader, downloader (against a loopback HTTP server), sources."""
from __future__ import annotations

import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from advnets.data import DATASETS, Split, default_cache_dir, load_split
from advnets.data.download import download, fetch, md5_file
from advnets.data.idx import read_idx
from advnets.errors import DataError

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"   # ../shared beside the repo
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
T10K_IMAGES, T10K_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
T10K_IMAGES_MD5 = "9fb629c4189551a2d022fa330f9573f3"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / T10K_IMAGES).is_file(), reason=f"MNIST test files not found in {MNIST_DIR}"
)
needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch):
    monkeypatch.delenv("ADVNETS_MIRROR", raising=False)
    monkeypatch.delenv("ADVNETS_DATA", raising=False)


# --- IDX reader --------------------------------------------------------------------------


@needs_mnist
def test_read_idx_real_mnist_test_set():
    images = read_idx(MNIST_DIR / T10K_IMAGES)
    labels = read_idx(MNIST_DIR / T10K_LABELS)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    assert round(float(images.mean()) / 255, 4) == 0.1325
    assert images[0, 14, 16:20].tolist() == [59, 249, 254, 62] and int(images[0].sum()) == 18454
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == MNIST_TEST_COUNTS
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@needs_mnist
def test_read_idx_uncompressed_and_non_uint8(tmp_path):
    raw = gzip.decompress((MNIST_DIR / T10K_LABELS).read_bytes())
    (tmp_path / "labels").write_bytes(raw)
    assert np.array_equal(read_idx(tmp_path / "labels"), read_idx(MNIST_DIR / T10K_LABELS))
    # big-endian int32, shape (2, 3)
    header = b"\x00\x00\x0c\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    (tmp_path / "ints").write_bytes(header + np.arange(-3, 3, dtype=">i4").tobytes())
    assert read_idx(tmp_path / "ints").tolist() == [[-3, -2, -1], [0, 1, 2]]


def _corrupt_gz(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    return bytes(data)


@needs_mnist
@pytest.mark.parametrize(
    "kind, expected",
    [
        ("truncated gz", "truncated gzip"),
        ("flipped bytes", "corrupt gzip"),
        ("bad magic", "bad magic number"),
        ("short payload", "is truncated: shape (10000, 28, 28) needs 7840000 payload bytes"),
        ("bad dtype", "unknown IDX dtype code 0x42"),
        ("missing", "does not exist"),
    ],
)
def test_read_idx_corrupt_files_raise_data_error(tmp_path, kind, expected):
    src = MNIST_DIR / T10K_IMAGES
    gz = src.read_bytes()
    raw = gzip.decompress(gz)
    make = {
        "truncated gz": lambda: gz[: len(gz) // 2],
        "flipped bytes": lambda: _corrupt_gz(src),
        "bad magic": lambda: gzip.compress(b"\x01\x02" + raw[2:], compresslevel=1),
        "short payload": lambda: gzip.compress(raw[:-100], compresslevel=1),
        "bad dtype": lambda: gzip.compress(raw[:2] + b"\x42" + raw[3:], compresslevel=1),
    }
    path = tmp_path / T10K_IMAGES
    if kind in make:
        path.write_bytes(make[kind]())
    with pytest.raises(DataError) as info:
        read_idx(path)
    msg = str(info.value)
    assert expected in msg and str(path) in msg and " -- " in msg and "\n" not in msg


@needs_mnist
def test_mismatched_image_and_label_counts(tmp_path):
    shutil.copy(MNIST_DIR / T10K_IMAGES, tmp_path)
    raw = gzip.decompress((MNIST_DIR / T10K_LABELS).read_bytes())
    short = raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1]  # a valid IDX file of 9,999 labels
    (tmp_path / T10K_LABELS).write_bytes(gzip.compress(short, compresslevel=1))
    with pytest.raises(DataError, match="10000 images but .* has 9999 labels"):
        load_split("mnist", "test", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)


# --- sources -----------------------------------------------------------------------------


@needs_mnist
def test_mnist_test_split_from_data_dir(tmp_path):
    split = load_split("mnist", "test", data_dir=MNIST_DIR, cache_dir=tmp_path, download=False)
    assert isinstance(split, Split) and len(split) == 10000
    assert split.images.shape == (10000, 1, 28, 28) and split.images.dtype == np.float32
    assert split.images.flags.c_contiguous and split.labels.dtype == np.int64
    assert split.images.min() == 0.0 and split.images.max() == 1.0
    assert round(float(split.images.mean()), 4) == 0.1325
    assert np.array_equal(split.images[:, 0], read_idx(MNIST_DIR / T10K_IMAGES) / np.float32(255))
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or cached on disk


@needs_fashion
def test_fashion_mnist_from_debian_package(tmp_path):
    splits = {s: load_split("fashion-mnist", s, cache_dir=tmp_path, download=False) for s in
              ("train", "valid", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 50000, "valid": 10000, "test": 10000}
    for split in splits.values():
        assert split.images.shape[1:] == (1, 28, 28) and split.images.dtype == np.float32
        assert split.labels.min() == 0 and split.labels.max() == 9
        assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    # train + valid are the 60,000 training images: 6,000 per class; test has 1,000 per class
    counts = np.bincount(splits["train"].labels) + np.bincount(splits["valid"].labels)
    assert counts.tolist() == [6000] * 10
    assert np.bincount(splits["test"].labels).tolist() == [1000] * 10
    assert round(float(splits["test"].images.mean()), 4) == 0.2868


def test_mnist_5k_splits_are_stratified():
    train, valid = load_split("mnist-5k", "train"), load_split("mnist-5k", "valid")
    assert train.images.shape == (4000, 1, 28, 28) and valid.images.shape == (1000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(valid.labels).tolist() == [100] * 10
    assert train.labels[:20].tolist() != sorted(train.labels[:20].tolist())  # classes interleaved
    both = np.concatenate([train.images, valid.images])
    assert both.min() == 0.0 and both.max() == 1.0 and train.images.dtype == np.float32
    assert np.allclose(both * 255, np.round(both * 255), atol=1e-4)  # pixels were 0..255 ints
    assert round(float(both.mean()), 4) == 0.1313  # independent of the split
    assert round(float(train.images.mean()), 4) == 0.1315  # fixed by seed 0
    # no image is in both parts
    keys = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in keys for img in valid.images)
    again = load_split("mnist-5k", "train")
    assert np.array_equal(again.labels, train.labels) and np.array_equal(again.images, train.images)


@needs_mnist
def test_mnist_5k_test_split_is_real_mnist_test_set(tmp_path):
    test = load_split("mnist-5k", "test", data_dir=MNIST_DIR, cache_dir=tmp_path, download=False)
    real = load_split("mnist", "test", data_dir=MNIST_DIR, cache_dir=tmp_path, download=False)
    assert np.array_equal(test.images, real.images) and np.array_equal(test.labels, real.labels)


def test_digits_shapes_and_split_sizes():
    splits = {s: load_split("digits", s) for s in ("train", "valid", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 1258, "valid": 269, "test": 270}
    for split in splits.values():
        assert split.images.shape[1:] == (1, 8, 8) and split.images.dtype == np.float32
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert split.labels.dtype == np.int64 and set(split.labels.tolist()) == set(range(10))
    assert round(float(np.concatenate([s.images for s in splits.values()]).mean()), 4) == 0.3053


@pytest.mark.parametrize("name, split, expected", [("mnsit", "train", "did you mean 'mnist'"),
                                                   ("fashion", "train", "did you mean 'fashion-mnist'"),
                                                   ("mnist", "validation", "did you mean 'valid'")])
def test_unknown_name_or_split(name, split, expected):
    with pytest.raises(DataError, match=expected):
        load_split(name, split, download=False)


def test_default_cache_dir(monkeypatch, tmp_path):
    assert default_cache_dir() == Path.home() / ".cache" / "advnets"
    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert DATASETS == ("mnist", "fashion-mnist", "mnist-5k", "digits", "toy1d", "cifar10", "tfd", "folder", "grid",
                        "ring", "stacked-mnist")


# --- downloader against a loopback HTTP server -------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `root` under /files/; /error/... answers 500; /short/... closes mid-body."""

    root = "."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.root, **kwargs)

    def do_GET(self):
        if self.path.startswith("/error/"):
            self.send_error(500, "Internal Server Error")
        elif self.path.startswith("/short/"):
            body = (Path(self.root) / Path(self.path).name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.close_connection = True
        elif self.path.startswith("/files/"):
            self.path = self.path[len("/files"):]
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a real HTTP server on 127.0.0.1 serving copies of the MNIST t10k files."""
    if not (MNIST_DIR / T10K_IMAGES).is_file():
        pytest.skip(f"MNIST test files not found in {MNIST_DIR}")
    root = tmp_path_factory.mktemp("mirror")
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(MNIST_DIR / name, root)
    handler = type("Handler", (_Handler,), {"root": str(root)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_good_file_then_load(server, tmp_path):
    dest = download(f"{server}/files/{T10K_IMAGES}", tmp_path / "d" / T10K_IMAGES, T10K_IMAGES_MD5)
    assert dest.is_file() and md5_file(dest) == T10K_IMAGES_MD5
    assert [p.name for p in dest.parent.iterdir()] == [T10K_IMAGES]  # no temp files left
    split = load_split("mnist", "test", cache_dir=tmp_path, mirrors=[f"{server}/files/"])
    assert len(split) == 10000 and np.bincount(split.labels).tolist() == MNIST_TEST_COUNTS
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [T10K_IMAGES, T10K_LABELS]


def test_download_wrong_md5_leaves_nothing(server, tmp_path):
    with pytest.raises(DataError) as info:
        download(f"{server}/files/{T10K_IMAGES}", tmp_path / T10K_IMAGES, "0" * 32)
    assert f"expected md5 {'0' * 32}, got {T10K_IMAGES_MD5}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path, expected", [("error", "HTTP 500"), ("short", "is truncated: got 549625 of"),
                                            ("files/nope", "HTTP 404")])
def test_download_server_failures(server, tmp_path, path, expected):
    with pytest.raises(DataError, match=expected):
        download(f"{server}/{path}/{T10K_IMAGES}", tmp_path / T10K_IMAGES, T10K_IMAGES_MD5)
    assert list(tmp_path.iterdir()) == []


def test_download_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot connect to"):
        download(f"http://127.0.0.1:{port}/{T10K_IMAGES}", tmp_path / T10K_IMAGES, T10K_IMAGES_MD5)
    assert list(tmp_path.iterdir()) == []


def test_fetch_falls_back_to_second_mirror(server, tmp_path):
    mirrors = [f"{server}/error/", f"{server}/short", f"{server}/files/"]
    path = fetch(T10K_IMAGES, T10K_IMAGES_MD5, mirrors, [tmp_path / "absent"], tmp_path / "c", True)
    assert path == tmp_path / "c" / T10K_IMAGES and md5_file(path) == T10K_IMAGES_MD5
    # second call finds the cached copy without the network
    assert fetch(T10K_IMAGES, T10K_IMAGES_MD5, [], [], tmp_path / "c", False) == path


def test_fetch_all_mirrors_fail(server, tmp_path):
    with pytest.raises(DataError) as info:
        fetch(T10K_IMAGES, T10K_IMAGES_MD5, [f"{server}/error/"], [], tmp_path, True)
    assert "every mirror failed" in info.value.message and "HTTP 500" in info.value.message
    assert "--data-dir" in info.value.hint and list(tmp_path.iterdir()) == []


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVNETS_MIRROR", f"{server}/error/, {server}/files/")
    assert len(load_split("mnist", "test", cache_dir=tmp_path)) == 10000


def test_offline_without_local_files_names_data_dir(tmp_path):
    with pytest.raises(DataError) as info:
        load_split("mnist", "test", data_dir=tmp_path / "empty", cache_dir=tmp_path, download=False)
    err = info.value
    assert T10K_IMAGES in err.message and str(tmp_path / "empty") in err.message
    assert "--data-dir" in err.hint and "ossci-datasets" in err.hint
