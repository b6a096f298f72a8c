"""Progress and notices for people: always on stderr, so stdout stays clean for `--json`."""

import sys


def log(message: str) -> None:
    print(f"qa: {message}", file=sys.stderr, flush=True)
