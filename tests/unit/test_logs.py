"""Log lines (services/cli/logs.py): JSON for machines, text on a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator

import pytest

from services.cli import logs


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stdout does under `make run`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_restored() -> Iterator[None]:
    """Put the root logger's handlers and level back after `logs.configure`."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "ledger.test", logging.WARNING, __file__, 1, "moved %d", (3,), None
    )
    record.__dict__.update(extra)
    return record


def test_a_json_line_holds_the_message_and_every_extra_field() -> None:
    """Given a record with extra fields (one a UUID), the JSON formatter writes one
    line: time, level, logger, the formatted message, then each field."""
    event_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    line = logs.JsonFormatter().format(
        _record(event="relay.published", events=3, event_id=event_id)
    )

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed.pop("time").endswith("Z")
    assert parsed == {
        "level": "WARNING",
        "logger": "ledger.test",
        "message": "moved 3",
        "event": "relay.published",
        "events": 3,
        "event_id": str(event_id),
    }


def test_a_field_json_cannot_hold_is_written_as_text() -> None:
    """Given an extra field msgspec cannot encode, the line still comes out, with
    that field as its str()."""
    line = json.loads(logs.JsonFormatter().format(_record(thing=object)))
    assert line["thing"] == "<class 'object'>"


def test_an_exception_is_kept_inside_the_json_line() -> None:
    """Given a record with exc_info, the traceback is one field of the one line."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "ledger.test", logging.ERROR, __file__, 1, "failed", None, None
        )
        record.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["exception"].endswith("RuntimeError: boom")


@pytest.mark.usefixtures("root_restored")
@pytest.mark.parametrize(
    ("log_format", "stream", "as_json"),
    [
        ("auto", io.StringIO, True),
        ("auto", Terminal, False),
        ("json", Terminal, True),
        ("text", io.StringIO, False),
    ],
)
def test_auto_writes_text_to_a_terminal_and_json_elsewhere(
    log_format: str, stream: type[io.StringIO], as_json: bool
) -> None:
    """Given each format and a stream that is or is not a terminal, one record comes
    out as JSON or as `time LEVEL logger: message key=value`."""
    output = stream()
    logs.configure("info", log_format, output)

    logging.getLogger("ledger.test").info("started", extra={"role": "api"})
    logging.getLogger("ledger.test").debug("not shown")

    written = output.getvalue()
    assert written.count("\n") == 1
    if as_json:
        parsed = json.loads(written)
        assert (parsed["message"], parsed["role"]) == ("started", "api")
    else:
        assert written.split(" ", 1)[1] == "INFO ledger.test: started role=api\n"
