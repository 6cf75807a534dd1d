"""Reading a multipart upload by streaming its parts, with our own size bound.

The app's client_max_size (1 MiB) guards JSON bodies; a spreadsheet may reach 20 MiB,
so its part is read chunk by chunk here and refused (413) past the bound, never
buffered whole first. The bound counts every part's bytes as they are read (a
chunked body has no Content-Length to check first), the parts are few, and a part
the route does not name is dropped chunk by chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from shared.errors import PayloadTooLarge, UnsupportedMediaType, invalid

FILE_SIZE_MAX = 20 * 1024 * 1024
# Every part's bytes together: the file and a few short fields.
BODY_SIZE_MAX = FILE_SIZE_MAX + 64 * 1024
FIELD_SIZE_MAX = 1024
# The import form has three parts (the file, category_id, allow_duplicate); a few
# more are tolerated, and their content dropped unread.
PARTS_MAX = 8
CHUNK_SIZE = 256 * 1024
TOO_LARGE = "The file is too large (20 MiB at most)"
TOO_MANY_PARTS = f"The form has too many parts ({PARTS_MAX} at most)"


class Upload(msgspec.Struct, kw_only=True, frozen=True):
    file: bytes
    fields: dict[str, str]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.file).hexdigest()


async def read_upload(
    request: web.Request, file_field: str, field_names: Collection[str]
) -> Upload:
    """The file part and the named short text fields of a multipart/form-data body;
    other parts are read to their end and dropped."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "The request must be multipart/form-data with an .xlsx file in"
            f" `{file_field}`"
        )
    if (request.content_length or 0) > BODY_SIZE_MAX:
        raise PayloadTooLarge(TOO_LARGE)
    try:
        file, fields = await _read_parts(request, file_field, field_names)
    except (HttpProcessingError, ValueError):
        # A part whose headers aiohttp cannot parse (bytes that are not ASCII in its
        # Content-Disposition, a missing boundary...) was a 500 before: found by the
        # OpenAPI contract test (schemathesis).
        raise web.HTTPBadRequest(
            reason="The request body is not valid multipart/form-data"
        ) from None
    if file is None:
        raise invalid(file_field, f"The {file_field} file is required.")
    return Upload(file=file, fields=fields)


class _Budget:
    """Bytes left for the whole body: every part read counts, whatever its name, so
    a chunked body (no Content-Length to check first) is bounded all the same."""

    def __init__(self, size_max: int) -> None:
        self.left = size_max

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise PayloadTooLarge(TOO_LARGE)


async def _read_parts(
    request: web.Request, file_field: str, field_names: Collection[str]
) -> tuple[bytes | None, dict[str, str]]:
    """The file and the named fields; at most PARTS_MAX parts, unknown parts dropped
    chunk by chunk as they are read (a form of 50,000 fields was kept whole)."""
    reader = await request.multipart()
    budget = _Budget(BODY_SIZE_MAX)
    file: bytes | None = None
    fields: dict[str, str] = {}
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > PARTS_MAX:
            raise PayloadTooLarge(TOO_MANY_PARTS)
        if not isinstance(part, BodyPartReader):  # a nested multipart body
            raise ValueError("nested multipart")
        if part.name == file_field:
            file = await _read_capped(part, FILE_SIZE_MAX, TOO_LARGE, budget)
        elif part.name is not None and part.name in field_names:
            message = "A form field is too long"
            raw = await _read_capped(part, FIELD_SIZE_MAX, message, budget)
            fields[part.name] = raw.decode("utf-8", errors="replace")
        else:
            await _read_capped(part, 0, "", budget, keep=False)
    return file, fields


async def _read_capped(
    part: BodyPartReader,
    size_max: int,
    message: str,
    budget: _Budget,
    keep: bool = True,
) -> bytes:
    """The part's bytes, read chunk by chunk; PayloadTooLarge past `size_max` (or
    past the body's budget). With keep=False the chunks are counted and dropped."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK_SIZE):
        budget.take(len(chunk))
        if keep:
            size += len(chunk)
            if size > size_max:
                raise PayloadTooLarge(message)
            chunks.append(chunk)
    return b"".join(chunks)
