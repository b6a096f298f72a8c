"""Progress and notices for people: always on stderr, so stdout stays clean for `--json`.

Libraries that log through `logging` are kept to qa's shape too: one line per record
(`OneLine`), and nothing for what a client's bad input makes them say
(`quiet_client_input_warnings`): the client is told in its reply.
"""

import logging
import sys


def log(message: str) -> None:
    print(f"qa: {message}", file=sys.stderr, flush=True)


class OneLine(logging.Formatter):
    """`qa: <logger>: <level>: <message>` in one line, an exception as its type and
    message: never a traceback or a message wrapped over several lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {' '.join(str(exc).split())})"
        return f"qa: {record.name}: {record.levelname.lower()}: {message[:500]}"


def one_line_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    return handler


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


# python-multipart logs a warning (before raising) for each malformed body it is given: a
# body anyone may send to an upload route, as often as they like.
CLIENT_INPUT_LOGGERS = ("python_multipart.multipart",)


def quiet_client_input_warnings() -> None:
    """Drop the warnings CLIENT_INPUT_LOGGERS write about a client's malformed input (the
    client gets its 4xx saying why); their errors (a temporary file that cannot be
    written) still reach the log. Idempotent."""
    for name in CLIENT_INPUT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ErrorsOnly) for f in logger.filters):
            logger.addFilter(_ErrorsOnly())
