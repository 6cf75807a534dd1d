"""The hash chain's key: weak keys refused at start, the key file, key ids, the ring."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.cli.hmac_key_file import create_key_file
from shared.config import Settings, SettingsError, load_settings
from shared.key_settings import resolve_key, settings_keyring
from shared.keyring import DEVELOPMENT_KEY, key_id_of

STRONG = "s" * 32
HOW = (
    ": give a random key of at least 32 bytes"
    " (`ledger hmac-key create --file PATH` makes one)"
)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (DEVELOPMENT_KEY, "is the built-in development key, which is public"),
        ("change-me", "is a placeholder from the deploy files"),
        ("change-me-local-hmac-key", "is a placeholder from the deploy files"),
        ("Change-Me-" + "x" * 40, "is a placeholder from the deploy files"),
        ("k" * 31, "is shorter than 32 bytes"),
        ("é" * 15, "is shorter than 32 bytes"),
    ],
)
def test_a_weak_key_is_refused_with_one_line_that_never_shows_it(
    key: str, reason: str
) -> None:
    """Given the public development key, a deploy file's placeholder or fewer than
    32 bytes, resolving the key fails with one line saying why, without the key."""
    with pytest.raises(SettingsError) as refused:
        resolve_key(load_settings({"LEDGER_HMAC_KEY": key}))
    assert str(refused.value) == f"LEDGER_HMAC_KEY {reason}{HOW}"
    assert key not in str(refused.value).replace("built-in development key", "")


def test_no_key_at_all_is_the_development_key_and_is_refused() -> None:
    """Given no key variable, the default is the development key, which is refused."""
    with pytest.raises(SettingsError) as refused:
        resolve_key(load_settings({}))
    assert str(refused.value) == (
        f"LEDGER_HMAC_KEY is the built-in development key, which is public{HOW}"
    )


def test_a_key_of_32_bytes_is_accepted_counted_in_utf8() -> None:
    """Given 32 ASCII bytes, or 16 two-byte characters, the key is kept as given."""
    assert resolve_key(load_settings({"LEDGER_HMAC_KEY": STRONG})).hmac_key == STRONG
    assert resolve_key(Settings(hmac_key="é" * 16)).hmac_key == "é" * 16


def test_the_key_file_is_read_once_and_checked_like_the_variable(
    tmp_path: Path,
) -> None:
    """Given LEDGER_HMAC_KEY_FILE, the key is the file's text without surrounding
    whitespace; a weak key in it, or a missing file, is refused with one line."""
    path = tmp_path / "hmac.key"
    path.write_text(f"  {STRONG}\n")
    settings = resolve_key(load_settings({"LEDGER_HMAC_KEY_FILE": str(path)}))
    assert (settings.hmac_key, settings.hmac_key_file) == (STRONG, str(path))
    path.write_text("change-me\n")
    with pytest.raises(SettingsError) as weak:
        resolve_key(load_settings({"LEDGER_HMAC_KEY_FILE": str(path)}))
    assert str(weak.value) == (
        f"the key in LEDGER_HMAC_KEY_FILE={str(path)!r}"
        f" is a placeholder from the deploy files{HOW}"
    )
    missing = tmp_path / "absent.key"
    with pytest.raises(SettingsError) as unreadable:
        resolve_key(load_settings({"LEDGER_HMAC_KEY_FILE": str(missing)}))
    assert str(unreadable.value) == (
        f"LEDGER_HMAC_KEY_FILE={str(missing)!r} cannot be read: No such file or"
        " directory"
    )


def test_the_key_and_the_key_file_together_are_refused() -> None:
    """Given both, which one signs would be a guess: refused."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_HMAC_KEY": STRONG, "LEDGER_HMAC_KEY_FILE": "/k"})
    assert str(refused.value) == (
        "LEDGER_HMAC_KEY and LEDGER_HMAC_KEY_FILE are both set: set one of them"
    )


def test_a_weak_previous_key_needs_the_legacy_bound() -> None:
    """Given the development key among the previous keys, the settings load only with
    LEDGER_HMAC_LEGACY_POSITION_MAX set; then the ring holds both keys and the bound."""
    listed = {"LEDGER_HMAC_KEY": STRONG, "LEDGER_HMAC_PREVIOUS_KEYS": DEVELOPMENT_KEY}
    with pytest.raises(SettingsError) as refused:
        load_settings(listed)
    assert str(refused.value) == (
        "LEDGER_HMAC_PREVIOUS_KEYS lists 1 weak key(s) (a public, placeholder or"
        " short one): set LEDGER_HMAC_LEGACY_POSITION_MAX to the last position"
        " written before key ids, so it verifies nothing newer"
    )
    bounded = load_settings({**listed, "LEDGER_HMAC_LEGACY_POSITION_MAX": "120"})
    ring = settings_keyring(bounded)
    assert ring.keys() == (STRONG.encode(), DEVELOPMENT_KEY.encode())
    assert ring.legacy_position_max == 120
    with pytest.raises(SettingsError) as negative:
        load_settings({"LEDGER_HMAC_LEGACY_POSITION_MAX": "-1"})
    assert str(negative.value) == (
        "LEDGER_HMAC_LEGACY_POSITION_MAX=-1 must be 0 (no bound) or more"
    )


def test_previous_keys_are_split_on_commas_and_found_by_id() -> None:
    """Given two previous keys with spaces and an empty entry, the ring holds the
    current key then both, each found by its id (16 hex digits, one per key)."""
    first, second = "a" * 40, "b" * 40
    settings = load_settings(
        {
            "LEDGER_HMAC_KEY": STRONG,
            "LEDGER_HMAC_PREVIOUS_KEYS": f" {first} ,, {second}",
        }
    )
    ring = settings_keyring(settings)
    assert ring.keys() == (STRONG.encode(), first.encode(), second.encode())
    assert ring.current_id == key_id_of(STRONG.encode())
    assert ring.secret(key_id_of(second.encode())) == second.encode()
    assert ring.secret(key_id_of(b"c" * 40)) is None
    ids = {key_id_of(key) for key in ring.keys()}
    assert len(ids) == 3
    assert all(len(id_) == 16 and int(id_, 16) >= 0 for id_ in ids)


def test_the_key_file_is_created_once_owner_only_and_then_kept(
    tmp_path: Path,
) -> None:
    """Given no file, `ledger hmac-key create` writes a 64-character random key that
    only its owner can read; given the file, it leaves it exactly as it was."""
    path = tmp_path / "config" / "ledger" / "hmac.key"
    assert create_key_file(path) is True
    key = path.read_text()
    assert len(key.strip()) == 64 and key.endswith("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert create_key_file(path) is False
    assert path.read_text() == key
    assert create_key_file(tmp_path / "other.key") is True
    assert (tmp_path / "other.key").read_text() != key
    assert resolve_key(Settings(hmac_key_file=str(path))).hmac_key == key.strip()
