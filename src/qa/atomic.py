"""Writing files so that a reader sees the old version or the new one, never half of one:
write a temporary file beside the target, flush it to disk, then rename it over the target.

The file gets the mode a plain `open(path, "w")` would give (0666 less the umask), not the
0600 of `mkstemp`, so an index built by one account can be read by another. Any failure
(full disk, no permission, read-only file system) becomes one `WriteError` naming the path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from qa.errors import WriteError

_umask_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time (OSError as `open` raises
    it): what a file written here is checked against when it is read back."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel tells (Linux 4.7+)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _umask_lock:  # elsewhere: set and restore (briefly process-wide)
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def open_lock_file(path: Path) -> IO[str]:
    """`path` opened to hold a lock on (created if missing); WriteError naming it if it
    cannot be (no permission; a folder, a FIFO or a device in its place, which reads and
    builds met as 'internal error: IsADirectoryError', or a hang: opening a FIFO for
    writing waits for a reader). It is opened without waiting, and must be a plain file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o666)
    except IsADirectoryError:
        raise _not_a_lock_file(path, "a folder") from None
    except OSError as exc:
        raise WriteError(f"cannot open the lock file {str(path)!r}: "
                         f"{exc.strerror or type(exc).__name__}", errno=exc.errno) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_lock_file(path, "not a plain file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a")


def _not_a_lock_file(path: Path, what: str) -> WriteError:
    return WriteError(f"the lock file {str(path)!r} is {what}: qa keeps its lock there; "
                      "remove or rename it")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, mode 0666 & ~umask; WriteError on failure."""
    write_chunks_atomic(path, [data])


def write_chunks_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """`write_bytes_atomic` of the chunks written one after another: a large file (a report
    of every miss of a long run) is never held whole in memory."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError.of(exc, path.parent, "create folder") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError.of(exc, path) from None
    try:
        for data in chunks:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        os.fchmod(fd, 0o666 & ~current_umask())
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError.of(exc, path) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`write_bytes_atomic` of the UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_texts_atomic(path: Path, texts: Iterable[str]) -> None:
    """`write_chunks_atomic` of the texts, UTF-8, written as they come."""
    write_chunks_atomic(path, (text.encode("utf-8") for text in texts))
