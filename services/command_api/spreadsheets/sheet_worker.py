"""Hop 1 for spreadsheets: the parse as a worker process runs it, and its answer.

The worker sends back one msgpack message, the rows or the refusal, which the API
decodes into the same rows or the same LedgerError a parse in-process would give.
Anything else the parse raises on a file that claims to be a workbook (openpyxl's
OSError "no valid workbook part", zipfile's CRC error, an unsupported compression
method, broken XML) is that file being broken inside: a 422, not a 5xx. This is a
process edge, so it catches Exception.
"""

from __future__ import annotations

import warnings

import msgspec

from services.command_api.spreadsheets.excel_import import SheetBounds, parse
from services.command_api.spreadsheets.workbook_parts import TOO_COMPLEX, UNREADABLE
from shared.commands import ImportRow
from shared.errors import (
    LedgerError,
    UnsupportedMediaType,
    ValidationFailed,
    invalid,
)

# The fork server imports this module and the API's main module (`services.cli.main`, by
# name: parse_pool.preload); multiprocessing then runs that main module again as
# `__mp_main__` in each forked worker, and runpy warns that it is already imported, a
# line outside the JSON log on every import. Expected and harmless (its imports are
# cached, `main()` does not run), so silenced here, where the fork server and the
# workers it forks have it before the warning would come.
warnings.filterwarnings(
    "ignore",
    message=r"'services\.cli\.main' found in sys\.modules after import of package",
    category=RuntimeWarning,
)


class Parsed(msgspec.Struct, frozen=True, tag="parsed"):
    rows: list[ImportRow]


class Refused(msgspec.Struct, frozen=True, tag="refused"):
    status: int
    message: str
    errors: dict[str, list[str]] = msgspec.field(default_factory=dict)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Parsed | Refused)


def parse_to_message(bounds: SheetBounds, raw: bytes) -> bytes:
    """In the worker: the parse's outcome, encoded."""
    try:
        return _encoder.encode(Parsed(parse(raw, bounds)))
    except ValidationFailed as error:
        return _encoder.encode(Refused(error.status, error.message, error.errors))
    except LedgerError as error:
        return _encoder.encode(Refused(error.status, error.message))
    except MemoryError:
        return _encoder.encode(Refused(422, "", {"customers": [TOO_COMPLEX]}))
    except Exception:  # noqa: BLE001 (a broken workbook, see the module docstring)
        return _encoder.encode(Refused(422, "", {"customers": [UNREADABLE]}))


def rows_from_message(message: bytes | None) -> list[ImportRow]:
    """In the API: the rows, or the refusal raised as the LedgerError it was. No
    message means the worker was stopped at a limit."""
    if message is None:
        raise invalid("customers", TOO_COMPLEX)
    outcome = _decoder.decode(message)
    if isinstance(outcome, Parsed):
        return outcome.rows
    if outcome.status == 422:
        raise ValidationFailed(outcome.errors)
    assert outcome.status == 415, outcome
    raise UnsupportedMediaType(outcome.message)
