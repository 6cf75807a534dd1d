"""Personal fields sealed under a client's key, the key wrapped by the master key
(shared/personal_data.py): what opens, and what refuses to."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from shared import events as e
from shared import personal_data as p
from shared.config import Settings, SettingsError
from shared.key_settings import resolve_key, settings_master_keys

MASTER = p.master_key("m" * 40)
p.use_master_keys(MASTER)
CLIENT = e.ClientCreated(
    client_id=7,
    account_id=1007,
    category_id=1,
    first_name="Ama",
    last_name="Mensah",
    phone_number="+233 20 000 0000",
    business_name="Ama's Chop Bar",
    business_email="ama@example.com",
)


def test_a_client_s_personal_fields_are_stored_blank_and_open_again() -> None:
    key, event_id = p.new_client_key(), uuid.uuid4()

    stored, sealed = p.seal(key, event_id, CLIENT)

    assert sealed is not None and sealed[:1] == p.SEALED_FORMAT
    assert msgspec.structs.asdict(stored) == {
        **msgspec.structs.asdict(CLIENT),
        "first_name": "",
        "last_name": "",
        "phone_number": "",
        "business_name": "",
        "business_email": "",
    }
    for value in ("Ama", "Mensah", "+233", "Chop", "example.com"):
        assert value.encode() not in sealed + msgspec.json.encode(stored)
    assert p.unseal(key, event_id, stored, sealed) == CLIENT


def test_an_event_without_personal_fields_set_is_stored_as_it_is() -> None:
    posting = e.TransactionPosted(
        transaction_id=1,
        client_id=7,
        account_id=1007,
        entry_type="debit",
        amount_minor=100,
        date=dt.date(2026, 12, 6),
    )

    assert p.seal(p.new_client_key(), uuid.uuid4(), posting) == (posting, None)


def test_only_the_fields_set_are_sealed_and_the_figures_stay_readable() -> None:
    posting = e.TransactionPosted(
        transaction_id=1,
        client_id=7,
        account_id=1007,
        entry_type="debit",
        amount_minor=12345,
        date=dt.date(2026, 12, 6),
        reference="INV-42",
    )
    key, event_id = p.new_client_key(), uuid.uuid4()

    stored, sealed = p.seal(key, event_id, posting)

    assert stored == msgspec.structs.replace(posting, reference="")
    assert sealed is not None
    assert p.unseal(key, event_id, stored, sealed) == posting


def test_sealed_fields_do_not_open_under_another_key_event_or_altered_bytes() -> None:
    key, event_id = p.new_client_key(), uuid.uuid4()
    stored, sealed = p.seal(key, event_id, CLIENT)
    assert sealed is not None
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])

    for key_, id_, bytes_ in (
        (p.new_client_key(), event_id, sealed),  # another client's key
        (key, uuid.uuid4(), sealed),  # moved to another event
        (key, event_id, flipped),  # tampered with
    ):
        with pytest.raises(p.PersonalDataError):
            p.unseal(key_, id_, stored, bytes_)


def test_a_wrapped_key_opens_only_for_its_own_client() -> None:
    key = p.new_client_key()
    wrapped = p.wrap(MASTER, 1, "client-7", key)

    assert p.master_id_of(wrapped) == MASTER.id
    assert key not in wrapped
    assert p.unwrap(wrapped, 1, "client-7") == key
    with pytest.raises(p.PersonalDataError, match="does not open"):
        p.unwrap(wrapped, 1, "client-8")  # moved to another client's row
    with pytest.raises(p.PersonalDataError, match="does not open"):
        p.unwrap(wrapped, 2, "client-7")  # or another business's


def test_a_key_wrapped_by_an_unknown_master_key_names_that_key_s_id() -> None:
    stranger = p.master_key("s" * 40)  # never given to this process
    wrapped = p.wrap(stranger, 1, "client-7", p.new_client_key())

    with pytest.raises(p.PersonalDataError, match=stranger.id.hex()):
        p.unwrap(wrapped, 1, "client-7")


def test_the_master_key_is_derived_from_the_chain_key_until_one_is_set() -> None:
    chain_key = "c" * 40
    derived = settings_master_keys(Settings(hmac_key=chain_key))
    own = settings_master_keys(
        Settings(hmac_key=chain_key, master_key="o" * 40, master_previous_keys="q" * 40)
    )

    assert derived.current == p.derived_master_key(chain_key)
    assert derived.current.secret != p.master_key(chain_key).secret  # a label apart
    assert derived.previous == ()
    assert own.current == p.master_key("o" * 40)
    # The listed previous key, then the derived one: keys wrapped before it was set.
    assert own.previous == (p.master_key("q" * 40), derived.current)
    # After a hash-chain key rotation, the key derived from the previous one.
    rotated = settings_master_keys(
        Settings(hmac_key="n" * 40, hmac_previous_keys=chain_key)
    )
    assert rotated.current == p.derived_master_key("n" * 40)
    assert rotated.previous == (derived.current,)


def test_a_weak_master_key_is_refused_without_being_shown() -> None:
    with pytest.raises(SettingsError) as refused:
        resolve_key(Settings(hmac_key="c" * 40, master_key="short-master"))

    assert "LEDGER_MASTER_KEY" in str(refused.value)
    assert "short-master" not in str(refused.value)
