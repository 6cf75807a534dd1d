"""Reading a multipart upload by streaming its parts, with our own size bound.

The app's client_max_size (1 MiB) guards JSON bodies; a spreadsheet may reach 20 MiB,
so its part is read chunk by chunk here and refused (413) past the bound, never
buffered whole first.
"""

from __future__ import annotations

import hashlib

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from shared.errors import PayloadTooLarge, UnsupportedMediaType, invalid

FILE_SIZE_MAX = 20 * 1024 * 1024
FIELD_SIZE_MAX = 1024
CHUNK_SIZE = 256 * 1024
TOO_LARGE = "The file is too large (20 MiB at most)"


class Upload(msgspec.Struct, kw_only=True, frozen=True):
    file: bytes
    fields: dict[str, str]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.file).hexdigest()


async def read_upload(request: web.Request, file_field: str) -> Upload:
    """The file part and the short text fields of a multipart/form-data body."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "The request must be multipart/form-data with an .xlsx file in"
            f" `{file_field}`"
        )
    if (request.content_length or 0) > FILE_SIZE_MAX + 64 * 1024:
        raise PayloadTooLarge(TOO_LARGE)
    try:
        file, fields = await _read_parts(request, file_field)
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


async def _read_parts(
    request: web.Request, file_field: str
) -> tuple[bytes | None, dict[str, str]]:
    reader = await request.multipart()
    file: bytes | None = None
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == file_field:
            file = await _read_capped(part, FILE_SIZE_MAX, TOO_LARGE)
        elif part.name is not None:
            raw = await _read_capped(part, FIELD_SIZE_MAX, "A form field is too long")
            fields[part.name] = raw.decode("utf-8", errors="replace")
    return file, fields


async def _read_capped(part: BodyPartReader, size_max: int, message: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK_SIZE):
        size += len(chunk)
        if size > size_max:
            raise PayloadTooLarge(message)
        chunks.append(chunk)
    return b"".join(chunks)
