"""One small error hierarchy; the edges (CLI, HTTP, UI) turn these into clear messages."""

from __future__ import annotations

import errno


def quoted(value: object, limit: int = 80) -> str:
    """`repr(value)` for a message, at most `limit` characters: an id or path sent by a
    client is echoed, not a 5,000-character one whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clipped(text: str, limit: int = 100) -> str:
    """`text` (a path, a header a client sent) in at most `limit` characters, for a message
    that names it without echoing all of it."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class QAError(Exception):
    """Base of every error qa raises on purpose. The message is one line, for a person."""

    exit_code = 1


class BadQuestion(QAError):
    """The question is empty, too long, or otherwise unusable."""

    exit_code = 2


class BadSetting(QAError):
    """A setting (flag, environment variable) has an unusable value."""

    exit_code = 2


class FolderNotWritable(BadSetting):
    """A folder qa must write in cannot be written (read-only, no permission)."""


class SeedError(QAError):
    """The documents in `seeds/` cannot be read or hold nothing to index."""


class NothingToIndex(SeedError):
    """Neither the seeds folder nor the uploads hold a readable document."""


class IndexMissing(QAError):
    """There is no index where one was expected."""


class IndexCorrupt(QAError):
    """An index file is missing, truncated or does not match its manifest."""


class IndexStale(QAError):
    """The index was built from other documents or other settings."""


class ModelError(QAError):
    """The embedding model cannot be loaded."""


class WriteError(QAError):
    """A file or folder qa must write cannot be written (full disk, no permission, read-only).
    HTTP 507 (Insufficient Storage) when the disk or quota is full, else 500."""

    def __init__(self, message: str, status: int = 500, errno: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errno = errno  # the OSError's, where one was the cause

    @classmethod
    def of(cls, exc: OSError, path: object, action: str = "write") -> WriteError:
        """`cannot write '<path>': No space left on device`, with the status that fits."""
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        return cls(f"cannot {action} {str(path)!r}: {exc.strerror or exc}", 507 if full else 500,
                   exc.errno)


# what an OSError is when a file or folder cannot be written: no space or quota, no
# permission, a read-only file system
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM})


def describe_os_error(exc: OSError, action: str = "write") -> str:
    """One line naming the path and the reason: `cannot write '/x/y': No space left on device`."""
    where = f" {str(exc.filename)!r}" if exc.filename is not None else ""
    reason = exc.strerror or type(exc).__name__
    return f"cannot {action}{where}: {reason}"


class ShuttingDown(QAError):
    """The server is stopping (Ctrl-C, SIGTERM): a build in progress was stopped, and the
    change it was for (an upload, a removal) was not made. HTTP 503: try again later."""

    status = 503


class TooManyAttempts(QAError):
    """A client sent too many wrong tokens lately; it may try again in `retry_after` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
