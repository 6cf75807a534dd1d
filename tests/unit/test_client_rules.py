"""shared/client's pure rules: amounts out, money in, refusals to exceptions, what is
retried and how long it waits, and RabbitMQ's topic matching for catch_up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.client.errors import (
    Conflict,
    IdempotencyInProgress,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
    error_for,
)
from shared.client.models import amount_json, minor_units
from shared.client.subscriber import topic_matches
from shared.client.transport import RetryPolicy, retried


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (Decimal("1234.50"), Decimal("1234.50")),
        (5, 5),
        ("1,234.50", "1,234.50"),
        (Decimal("NaN"), "NaN"),
    ],
)
def test_amounts_go_out_as_given(value: Decimal | int | str, sent: object) -> None:
    assert amount_json(value) == sent
    assert type(amount_json(value)) is type(sent)


@pytest.mark.parametrize("value", [0.1, 10.0, True, None, [1]])
def test_a_float_or_any_other_type_is_no_amount(value: object) -> None:
    with pytest.raises(TypeError, match="amount must be Decimal, int or str"):
        amount_json(value)  # type: ignore[arg-type]


def test_minor_units_are_exact_and_refuse_fractions_of_a_cent() -> None:
    assert minor_units(Decimal("20351822.92")) == 2035182292
    assert minor_units(Decimal("-1234.5")) == -123450
    assert minor_units(Decimal("1E+2")) == 10000
    assert minor_units(Decimal("805187831.89")) == 80518783189
    with pytest.raises(ValueError, match="not a whole number of cents"):
        minor_units(Decimal("805187831.8899997"))


def test_refusals_map_to_their_exceptions() -> None:
    invalid = error_for(
        422,
        b'{"message": "The given data was invalid.", "errors": {"amount": ["x"]}}',
        None,
    )
    assert isinstance(invalid, ValidationError)
    assert invalid.errors == {"amount": ["x"]}
    busy = error_for(
        409, b'{"message": "A request with this Idempotency-Key is in progress"}', None
    )
    assert isinstance(busy, IdempotencyInProgress)
    duplicate = error_for(409, b'{"message": "dup", "import_id": "i-1"}', None)
    assert type(duplicate) is Conflict and duplicate.import_id == "i-1"
    unavailable = error_for(503, b'{"message": "retry"}', "3")
    assert isinstance(unavailable, Unavailable) and unavailable.retry_after_s == 3
    assert type(error_for(404, b'{"message": "Client 1 not found"}', None)) is NotFound
    assert type(error_for(413, b"{}", None)) is PayloadTooLarge
    assert type(error_for(415, b"{}", None)) is UnsupportedMediaType
    gateway = error_for(502, b"<html>Bad Gateway</html>", None)
    assert type(gateway) is ServerError
    assert (gateway.status, gateway.message) == (502, "<html>Bad Gateway</html>")


def test_only_try_again_answers_are_retried() -> None:
    assert retried(error_for(503, b"{}", "1"))
    assert retried(
        error_for(
            409,
            b'{"message": "A request with this Idempotency-Key is in progress"}',
            None,
        )
    )
    assert retried(error_for(502, b"", None)) and retried(error_for(504, b"", None))
    for status in (400, 401, 404, 409, 412, 413, 415, 422, 500):
        assert not retried(error_for(status, b'{"message": "no"}', None)), status


def test_the_pause_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_first_s=0.1, backoff_max_s=1.0, retry_after_max_s=30)
    assert 0.05 <= policy.pause_s(1, None) <= 0.1
    assert 0.2 <= policy.pause_s(3, None) <= 0.4
    assert 0.5 <= policy.pause_s(10, None) <= 1.0
    assert policy.pause_s(1, Unavailable(503, "busy", 7.0)) == 7.0
    assert policy.pause_s(1, Unavailable(503, "busy", 600.0)) == 30.0


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("17.#", "17.transaction.posted", True),
        ("17.transaction.*", "17.transaction.posted", True),
        ("17.transaction.*", "17.transaction.reversed", True),
        ("17.transaction.*", "17.deposit.posted", False),
        ("17.transaction.*", "170.transaction.posted", False),
        ("*.client.created", "4.client.created", True),
        ("#", "4.ledger.checkpoint", True),
        ("#.posted", "4.deposit.posted", True),
        ("4.*", "4.client.created", False),
        ("4.#.created", "4.client.created", True),
    ],
)
def test_catch_up_matches_routing_keys_as_a_topic_exchange_does(
    pattern: str, key: str, matches: bool
) -> None:
    assert topic_matches(pattern, key) is matches
