"""Downloads that never end, signals during a download, and image folders with unreadable subfolders."""
import hashlib
import http.server
import os
import re
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
    """/fast sends BODY at once; /slow announces BODY and sends one byte every 0.1 s (27 minutes in all) until `stop`
    is set."""

    stop = threading.Event()

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
                if self.stop.wait(0.1):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    _Trickle.stop.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Trickle.stop.set()
    httpd.shutdown()
    httpd.server_close()


def test_trickling_server_hits_the_deadline(server, tmp_path):
    # Every byte arrives well within the read timeout (5 s), so only the deadline can end the download before the
    # body does. It runs in a thread so that a download the deadline fails to stop cannot hang the suite: the join's
    # timeout is that guard, not a bound on how long the download may take.
    raised = []

    def fetch():
        try:
            download(f"{server}/slow", tmp_path / "f.bin", hashlib.md5(BODY).hexdigest(), timeout=5, deadline=0.5)
        except DataError as e:
            raised.append(e)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=120)
    if worker.is_alive():
        _Trickle.stop.set()                         # the server closes early: the download ends, truncated
        worker.join(timeout=30)
        pytest.fail("the download was still running 120 s after a 0.5 s deadline")
    assert len(raised) == 1, "the download ended without an error"
    message = str(raised[0])
    assert re.search(r"took longer than 0.5 s \((\d+) bytes so far\)", message), message
    assert int(re.search(r"(\d+) bytes so far", message)[1]) < len(BODY)       # stopped mid-body, not at its end
    assert "ADVNETS_DOWNLOAD_DEADLINE" in raised[0].hint
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
