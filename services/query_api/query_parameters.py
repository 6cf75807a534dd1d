"""The query routes' parameters: the query string as the read-model queries take it.

Every parameter reads empty (or blank) as absent; anything else that is not what the
parameter takes is a 422 naming it, in the message the original API's clients parse.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from aiohttp import web

from services.http.edge import whole_number
from services.query_api.queries import ClientFilter
from shared.errors import ValidationFailed

PER_PAGE_MAX = 1000
PER_PAGE_DEFAULT = 100
# An OFFSET beyond this cannot be a bigint (and matches no row anyway).
OFFSET_MAX = 2**62
# Part of the HTTP contract (the OpenAPI document's maxLength), like PER_PAGE_MAX:
# longer than any name, phone number or e-mail address a search is meant to find.
SEARCH_LENGTH_MAX = 100


def optional_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name, "").strip()
    if text == "":
        return None
    number = whole_number(text)
    if number is None:
        raise ValidationFailed(
            {name: [f"The {name.replace('_', ' ')} must be an integer."]}
        )
    return number


def _optional_bool(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name, "").strip().lower()
    if text == "":
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationFailed({name: [f"The {name} field must be true or false."]})


def optional_date(request: web.Request, name: str) -> dt.date | None:
    text = request.query.get(name, "").strip()
    if text == "":
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            {name: [f"The {name} must be a date in the format YYYY-MM-DD."]}
        ) from None


def _optional_search(request: web.Request) -> str | None:
    """The list's `search`, trimmed. Checked as sent, as the OpenAPI document's
    schema describes it: at most SEARCH_LENGTH_MAX characters and no control
    characters (a NUL could not even reach PostgreSQL as text)."""
    sent = request.query.get("search", "")
    if len(sent) > SEARCH_LENGTH_MAX:
        raise ValidationFailed(
            {
                "search": [
                    "The search may not be greater than"
                    f" {SEARCH_LENGTH_MAX} characters."
                ]
            }
        )
    if any(unicodedata.category(character) == "Cc" for character in sent):
        raise ValidationFailed(
            {"search": ["The search may not contain control characters."]}
        )
    # Checked before it is found blank: 101 spaces or a tab are refused as the
    # OpenAPI document says, not taken for no search.
    return sent.strip() or None


def period(request: web.Request) -> tuple[dt.date | None, dt.date | None]:
    """A statement's `from` and `to` dates, both checked before either is refused."""
    errors: dict[str, list[str]] = {}
    dates: list[dt.date | None] = []
    for name in ("from", "to"):
        try:
            dates.append(optional_date(request, name))
        except ValidationFailed as error:
            errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)
    start, end = dates
    if start is not None and end is not None and start > end:
        raise ValidationFailed(
            {"to": ["The to date must be on or after the from date."]}
        )
    return start, end


def client_filter(request: web.Request) -> ClientFilter:
    """The client list's filters, and its page when `page` or `per_page` is given
    (without either: the whole list, as the seed)."""
    page, per_page = optional_int(request, "page"), optional_int(request, "per_page")
    category_id = optional_int(request, "category_id")
    archived = _optional_bool(request, "archived")
    search = _optional_search(request)
    if page is None and per_page is None:
        return ClientFilter(category_id=category_id, archived=archived, search=search)
    # Explicit None checks: `page or 1` turned page=0 into page 1 and per_page=0
    # into 100 rows instead of refusing them.
    page = 1 if page is None else page
    per_page = PER_PAGE_DEFAULT if per_page is None else per_page
    errors: dict[str, list[str]] = {}
    if page < 1 or (page - 1) * per_page > OFFSET_MAX:
        errors["page"] = ["The page must be at least 1 and within range."]
    if not 1 <= per_page <= PER_PAGE_MAX:
        errors["per_page"] = ["The per page must be between 1 and 1000."]
    if errors:
        raise ValidationFailed(errors)
    return ClientFilter(
        category_id=category_id,
        archived=archived,
        search=search,
        limit=per_page,
        offset=(page - 1) * per_page,
    )


def link_header(request: web.Request, where: ClientFilter, total: int) -> str:
    """The paged list's Link header: first, prev, next and last, where they exist."""
    assert where.limit is not None
    page = where.offset // where.limit + 1
    last = max(1, -(-total // where.limit))
    links = []
    for rel, number in (
        ("first", 1),
        ("prev", page - 1),
        ("next", page + 1),
        ("last", last),
    ):
        if 1 <= number <= last:
            url = request.rel_url.update_query(page=number, per_page=where.limit)
            links.append(f'<{url}>; rel="{rel}"')
    return ", ".join(links)
