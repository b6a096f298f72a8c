"""Progress of long jobs (indexing, evaluation) on stderr.

On a terminal: one line redrawn in place (count, total, rate, ETA). Elsewhere (logs, CI):
a plain line every `every` seconds, no carriage returns. Jobs shorter than `delay` seconds
print nothing, so quick commands stay quiet. Lines start with `qa: `, as every other line
qa writes on stderr, and the last count is written once.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """`with Progress("embedding", total=n, unit="passages") as bar: bar.update(batch)`."""

    def __init__(self, label: str, total: int | None = None, unit: str = "items",
                 stream: TextIO | None = None, every: float = 10.0, delay: float = 2.0) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.delay = every, delay
        self.done = 0
        self.started = self._last = time.monotonic()
        self._shown = False
        self._shown_done = -1  # the count of the last line written (logs: not written twice)
        self._live = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        text = f"qa: {self.label}: {count} {self.unit} ({rate:,.1f}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text + f", {_duration(elapsed)} elapsed)"

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        if self._live and now - self._last >= 0.2:
            self.stream.write("\r\033[K" + self.line())
        elif not self._live and (not self._shown or now - self._last >= self.every):
            self.stream.write(self.line() + "\n")
        else:
            return
        self.stream.flush()
        self._last, self._shown, self._shown_done = now, True, self.done

    @contextlib.contextmanager
    def above(self) -> Iterator[None]:
        """Lines written to the stream meanwhile (a problem reported) go above a live bar:
        its line is cleared first and drawn again after (else they ran on from its end)."""
        live = self._live and self._shown
        if live:
            self.stream.write("\r\033[K")
        try:
            yield
        finally:
            if live:
                self.stream.write(self.line())
                self.stream.flush()

    def close(self) -> None:
        if self._shown and (self._live or self._shown_done != self.done):
            self.stream.write(("\r\033[K" if self._live else "") + self.line() + "\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
