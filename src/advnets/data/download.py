"""Finding dataset files locally, or downloading them with a checksum (docs/design.md §3).

Downloads stream into a temporary file beside the destination, are md5-verified, and
only then renamed into place with `os.replace`, so a destination path either holds a
verified file or nothing. Files found in local directories are *not* md5-checked: the
Debian package `dataset-fashion-mnist`, for one, recompresses the upstream ``.gz`` files
(same images, different bytes), so the caller validates them structurally instead.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from advnets.errors import DataError, OutputError
from advnets.fileio import atomic_open

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Where downloads go: $ADVNETS_DATA if set, else ~/.cache/advnets."""
    env = os.environ.get("ADVNETS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "advnets"


def file_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, mtime, size): the key under which a parsed dataset file is cached in memory. A replaced
    file gets a new key, so a cache keyed by it never serves stale data."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def md5_file(path: str | Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


DEADLINE = 3600.0     # seconds a whole file may take (MNIST takes seconds, CIFAR-10 minutes on a slow line)


def download(url: str, dest: str | Path, md5: str, timeout: float = 30.0, deadline: float | None = None,
             progress: bool | None = None) -> Path:
    """Download `url` to `dest`, check its md5, and move it into place atomically.

    `timeout` bounds each network read, `deadline` (default $ADVNETS_DOWNLOAD_DEADLINE or DEADLINE seconds) the
    whole file, so a server that trickles bytes cannot hang a run. `progress` (default: when stderr is a terminal)
    shows a progress bar on stderr. On any failure (HTTP error, connection error, short body, md5 mismatch, the
    deadline, Ctrl-C or SIGTERM raised as an exception) the temporary file is removed, `dest` is left untouched;
    the failures are a `DataError`.
    """
    dest = Path(dest)
    deadline = float(os.environ.get("ADVNETS_DOWNLOAD_DEADLINE", DEADLINE)) if deadline is None else deadline
    hint = f"check the network and the mirror, or download {dest.name} by hand and pass --data-dir DIR"
    try:
        with atomic_open(dest, "wb", suffix=".part") as out:    # removed again on any error below
            h, size = hashlib.md5(), 0
            try:
                started = time.monotonic()
                with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as resp:
                    length = resp.headers.get("Content-Length")
                    total = int(length) if length is not None and length.isdigit() else None
                    with _progress_bar(dest.name, total, progress) as bar:
                        while chunk := resp.read1(_CHUNK):     # what has arrived, at most one wait of `timeout`
                            out.write(chunk)
                            h.update(chunk)
                            size += len(chunk)
                            bar.update(len(chunk))
                            if time.monotonic() - started > deadline:
                                raise DataError(f"download of {url} took longer than {deadline:g} s "
                                                f"({size} bytes so far)", hint + "; or raise "
                                                "ADVNETS_DOWNLOAD_DEADLINE (seconds)")
            except urllib.error.HTTPError as e:  # before URLError: it is a subclass
                raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}", hint) from None
            except urllib.error.URLError as e:
                raise DataError(f"cannot connect to {url}: {e.reason}", hint) from None
            except (OSError, http.client.HTTPException) as e:  # reset, timeout, bad reply
                if isinstance(e, OutputError):
                    raise
                raise DataError(f"download of {url} failed: {e!r}", hint) from None
            # http.client does not raise when the server closes early; check it ourselves.
            if total is not None and size != total:
                raise DataError(f"download of {url} is truncated: got {size} of {length} bytes", hint)
            got = h.hexdigest()
            if got != md5.lower():
                raise DataError(
                    f"checksum mismatch for {url}: expected md5 {md5}, got {got}",
                    "the mirror serves a different or damaged file; try another mirror or pass --data-dir DIR",
                )
    except OSError as e:                                          # the directory or the disk
        message = e.message if isinstance(e, OutputError) else f"cannot write {dest}: {e.strerror or e}"
        raise DataError(message, "set ADVNETS_DATA (or pass cache_dir) to a writable directory") from None
    return dest


def _progress_bar(name: str, total: int | None, show: bool | None):
    """A tqdm bar on stderr when `show` (default: stderr is a terminal), else a do-nothing stand-in."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return contextlib.nullcontext(_NoBar())
    return tqdm(total=total, desc=f"downloading {name}", unit="B", unit_scale=True, leave=False, file=sys.stderr)


class _NoBar:
    def update(self, n: int) -> None:
        pass


_download = download  # `fetch` has a parameter called `download`


def fetch(
    filename: str,
    md5: str,
    mirrors: Sequence[str],
    search_dirs: Sequence[str | Path],
    cache_dir: str | Path,
    download: bool = True,
) -> Path:
    """Return a path to `filename`, downloading it into `cache_dir` if needed.

    Looks in each of `search_dirs` in order, then in `cache_dir`; if absent and
    `download` is true, tries each mirror (a base URL) in turn, saving the md5-checked
    file into `cache_dir`. Otherwise raises `DataError` listing where it looked.
    """
    cache_dir = Path(cache_dir)
    looked: list[Path] = []
    for d in [*search_dirs, cache_dir]:
        path = Path(d).expanduser() / filename
        if path in looked:
            continue
        if path.is_file():
            return path
        looked.append(path)
    where = ", ".join(str(p.parent) for p in looked)
    fix = f"pass --data-dir DIR holding {filename}"
    if not download:
        source = f" from {mirrors[0]}" if mirrors else ""
        raise DataError(
            f"{filename} not found (looked in {where}) and downloads are off",
            f"{fix}, or run with network access so it can be downloaded{source}",
        )
    if not mirrors:
        raise DataError(f"{filename} not found (looked in {where}) and no mirror is known", fix)
    failures = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        try:
            return _download(url + filename, cache_dir / filename, md5)
        except DataError as e:
            failures.append(e.message)
    raise DataError(
        f"{filename} not found (looked in {where}) and every mirror failed: " + "; ".join(failures),
        f"{fix}, or check network access to {mirrors[0]}",
    )
