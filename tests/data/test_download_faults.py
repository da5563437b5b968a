"""Downloads that never end, signals during a download, and image folders with unreadable subfolders."""
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from advnets.data.download import download
from advnets.data.folder import UnreadableImagesWarning, folder_split
from advnets.errors import DataError

SRC = str(Path(__file__).resolve().parents[2] / "src")
BODY = bytes(range(256)) * 64                     # 16 KiB


class _Trickle(http.server.BaseHTTPRequestHandler):
    """/fast sends BODY at once; /slow announces BODY and sends one byte every 0.1 s."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        try:
            if self.path == "/fast":
                self.wfile.write(BODY)
                return
            for i in range(len(BODY)):
                self.wfile.write(BODY[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_trickling_server_hits_the_deadline(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(DataError, match=r"took longer than 0.5 s .*ADVNETS_DOWNLOAD_DEADLINE"):
        download(f"{server}/slow", tmp_path / "f.bin", hashlib.md5(BODY).hexdigest(), timeout=5, deadline=0.5)
    assert time.monotonic() - started < 3           # each byte arrives well within the read timeout
    assert not list(tmp_path.iterdir())


def test_progress_bar_on_request_and_md5(server, tmp_path, capsys):
    dest = download(f"{server}/fast", tmp_path / "f.bin", hashlib.md5(BODY).hexdigest(), progress=True)
    assert dest.read_bytes() == BODY and "downloading f.bin" in capsys.readouterr().err
    download(f"{server}/fast", tmp_path / "g.bin", hashlib.md5(BODY).hexdigest())   # stderr no terminal: no bar
    assert capsys.readouterr().err == ""


def test_sigterm_during_a_download_leaves_no_part_file(server, tmp_path):
    code = ("import sys\nfrom advnets.cli import _signals\nfrom advnets.data.download import download\n_signals()\n"
            "download(sys.argv[1], sys.argv[2], '0' * 32, deadline=60)")
    child = subprocess.Popen([sys.executable, "-c", code, f"{server}/slow", str(tmp_path / "f.bin")],
                             env={**os.environ, "PYTHONPATH": SRC}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".f.bin.*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".f.bin.*.part"))      # the download is under way
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode != 0 and "Terminated" in err
    assert not list(tmp_path.iterdir())


def _folder(tmp_path):
    from PIL import Image

    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(tmp_path / "a" / f"{i}.png")
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(tmp_path / "c" / f"{i}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "b" / "hidden.png")


def test_unlistable_subfolder_is_counted_in_the_warning(tmp_path, monkeypatch):
    _folder(tmp_path)
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, labels = folder_split("train", tmp_path, size=8)
    messages = [str(w.message) for w in caught if issubclass(w.category, UnreadableImagesWarning)]
    assert len(messages) == 1 and "skipped 1 folder" in messages[0] and "b/ (Permission denied)" in messages[0]
    assert len(images) == 12 - 2 * 1 and sorted(set(labels.tolist())) == [0, 1]       # a and c only


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder (the test above covers it as root)")
def test_chmod_000_subfolder_is_counted_in_the_warning(tmp_path):
    _folder(tmp_path)
    os.chmod(tmp_path / "b", 0)
    try:
        with pytest.warns(UnreadableImagesWarning, match="skipped 1 folder"):
            folder_split("train", tmp_path, size=8)
    finally:
        os.chmod(tmp_path / "b", 0o755)
