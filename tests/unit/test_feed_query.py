"""The feed's query parameters: defaults, the cap, and what is refused."""

from __future__ import annotations

import pytest

from services.query_api.feed import FeedQuery, feed_query
from shared.errors import ValidationFailed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, FeedQuery(after=0, limit=100)),
        ({"after": "", "limit": ""}, FeedQuery(after=0, limit=100)),
        ({"after": "17", "limit": "1"}, FeedQuery(after=17, limit=1)),
        ({"after": " 17 ", "limit": "1000"}, FeedQuery(after=17, limit=1000)),
        ({"limit": "1001"}, FeedQuery(after=0, limit=1000)),
        ({"limit": "999999999999999999"}, FeedQuery(after=0, limit=1000)),
    ],
)
def test_defaults_and_the_cap(query: dict[str, str], expected: FeedQuery) -> None:
    """Absent or empty parameters take their defaults; a limit above 1,000 is 1,000."""
    assert feed_query(query) == expected


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"after": "-1"}, {"after": ["The after must be a whole number."]}),
        ({"after": "abc"}, {"after": ["The after must be a whole number."]}),
        ({"after": "1.5"}, {"after": ["The after must be a whole number."]}),
        ({"after": "²"}, {"after": ["The after must be a whole number."]}),
        ({"after": "1" * 19}, {"after": ["The after must be a whole number."]}),
        ({"limit": "0"}, {"limit": ["The limit must be at least 1."]}),
        ({"limit": "-5"}, {"limit": ["The limit must be a whole number."]}),
        (
            {"after": "x", "limit": "y"},
            {
                "after": ["The after must be a whole number."],
                "limit": ["The limit must be a whole number."],
            },
        ),
    ],
)
def test_bad_parameters_are_refused_together(
    query: dict[str, str], errors: dict[str, list[str]]
) -> None:
    """Every bad parameter is reported at once, in the Laravel 422 shape."""
    with pytest.raises(ValidationFailed) as refused:
        feed_query(query)
    assert refused.value.errors == errors
    assert refused.value.status == 422
