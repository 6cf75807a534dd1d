"""Log lines: one JSON object per line for machines, plain text on a terminal.

Each process calls `configure` once. `LEDGER_LOG_FORMAT=auto` (the default) writes
text when the stream is a terminal (`make run` in a shell) and JSON lines otherwise
(containers, files, pipes), so a log shipper parses every line without rules. The
fields a call passes in `extra=` (request id, business id, durations...) become keys
of the JSON object, or `key=value` pairs after the text message.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TextIO

import msgspec

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_encoder = msgspec.json.Encoder()


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra, "exception"?}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Anything msgspec cannot encode (a UUID is fine, an object is not) is
        # written as its str(), never dropped and never failing the log call.
        try:
            return _encoder.encode(line).decode()
        except (TypeError, msgspec.EncodeError):
            return _fallback(line)


def _fallback(line: dict[str, object]) -> str:
    plain = {
        key: value if isinstance(value, str | int | float | bool | None) else str(value)
        for key, value in line.items()
    }
    return _encoder.encode(plain).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={value}" for key, value in extra_fields(record).items()
        )
        text = f"{_timestamp(record)} {record.levelname} {record.name}: "
        text += record.getMessage() + (f" {fields}" if fields else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


# The broker clients' loggers write whole frames at DEBUG, message bodies (and so
# personal fields) among them: they log at INFO and above whatever the level.
WIRE_LOGGERS = ("aiormq", "aio_pika", "pamqp")


def configure(level: str, log_format: str, stream: TextIO) -> None:
    """Send every log record at `level` or above to `stream`, formatted as asked
    (`auto`: text when `stream` is a terminal, JSON lines otherwise); the broker
    clients' at INFO or above (WIRE_LOGGERS)."""
    as_text = log_format == "text" or (log_format == "auto" and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if as_text else JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
