"""The keys a process signs and seals with, from its settings: the hash chain's key
(from LEDGER_HMAC_KEY or its file, refused when weak), the audit's keyring, and the
master keys that wrap each client's key."""

from __future__ import annotations

import msgspec

from shared.config import Settings, SettingsError
from shared.keyring import KEY_BYTES_MIN, Keyring, keyring, previous_keys, weakness
from shared.personal_data import (
    MasterKeys,
    derived_master_key,
    master_key,
    use_master_keys,
)


def resolve_key(settings: Settings) -> Settings:
    """The settings with the key this process will sign with, or SettingsError: read
    from LEDGER_HMAC_KEY_FILE when that is set (the settings read from a file, once,
    at start, with LEDGER_MASTER_KEY_FILE), then refused when it is weak
    (shared/keyring.weakness). The key itself never appears in the message, only why
    it is refused. The master keys are then known to this process
    (settings_master_keys).

    load_settings() reads variables only and checks a key file's path, not its key,
    which is why every `ledger` command calls this right after it."""
    key = _strong_key(settings.hmac_key, settings.hmac_key_file, "LEDGER_HMAC_KEY")
    master = settings.master_key
    if master or settings.master_key_file:
        master = _strong_key(master, settings.master_key_file, "LEDGER_MASTER_KEY")
    resolved = msgspec.structs.replace(settings, hmac_key=key, master_key=master)
    settings_master_keys(resolved)
    return resolved


def _strong_key(key: str, path: str, variable: str) -> str:
    """The key set in `variable`, or read from the file `variable`_FILE names,
    refused when it is weak (without the key in the message)."""
    source = variable
    if path:
        key = _read_key_file(path, f"{variable}_FILE")
        source = f"the key in {variable}_FILE={path!r}"
    problem = weakness(key)
    if problem is not None:
        raise SettingsError(
            f"{source} {problem}: give a random key of at least {KEY_BYTES_MIN}"
            " bytes (`ledger hmac-key create --file PATH` makes one)"
        )
    return key


def _read_key_file(path: str, variable: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except OSError as error:
        raise SettingsError(
            f"{variable}={path!r} cannot be read: {error.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{variable}={path!r} is not UTF-8 text") from None


def settings_master_keys(settings: Settings) -> MasterKeys:
    """The master key new client keys are wrapped with (LEDGER_MASTER_KEY, or the
    one derived from the hash chain's key) and the previous ones: those listed, the
    derived one once LEDGER_MASTER_KEY is set (the way from it to a key of its own),
    and those derived from LEDGER_HMAC_PREVIOUS_KEYS (a hash-chain key rotation keeps
    the client keys open). This process may open client keys wrapped by any of them
    from then on."""
    derived = derived_master_key(settings.hmac_key)
    current = master_key(settings.master_key) if settings.master_key else derived
    listed = previous_keys(settings.master_previous_keys)
    previous = tuple(map(master_key, listed))
    if current != derived:
        previous += (derived,)
    # Derived from a previous hash-chain key: what wrapped before that key's rotation.
    previous += tuple(
        derived_master_key(key) for key in previous_keys(settings.hmac_previous_keys)
    )
    use_master_keys(current, *previous)
    return MasterKeys(current, previous)


def settings_keyring(settings: Settings) -> Keyring:
    """The keys the audit verifies with: LEDGER_HMAC_KEY (or its file's), then
    LEDGER_HMAC_PREVIOUS_KEYS, and where legacy rows end."""
    return keyring(
        settings.hmac_key,
        settings.hmac_previous_keys,
        settings.hmac_legacy_position_max,
    )
