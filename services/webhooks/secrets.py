"""An endpoint's secret at rest: sealed under the master key, never stored in clear.

The secret is wrapped as a client's key is (shared/personal_data.wrap: the master
key's id, a nonce, AES-256-GCM), bound to the business and to `webhook-<endpoint
id>`, so a sealed secret copied to another endpoint's row does not open. A process
opens secrets wrapped by any master key its settings name (the previous ones too);
`ledger master-key rotate` re-seals every secret under the current one (resealed),
so that the previous keys can then be dropped.
"""

from __future__ import annotations

from shared.config import Settings
from shared.key_settings import settings_master_keys
from shared.personal_data import MasterKey, unwrap, wrap


def _binding(endpoint_id: int) -> str:
    return f"webhook-{endpoint_id}"


def seal(settings: Settings, business_id: int, endpoint_id: int, secret: str) -> bytes:
    master = settings_master_keys(settings).current
    return wrap(master, business_id, _binding(endpoint_id), secret.encode())


def open_secret(business_id: int, endpoint_id: int, sealed: bytes) -> str:
    """The secret, or PersonalDataError (a master key this process was not given)."""
    return unwrap(sealed, business_id, _binding(endpoint_id)).decode()


def resealed(
    master: MasterKey, business_id: int, endpoint_id: int, sealed: bytes
) -> bytes:
    """The same secret sealed under `master` (PersonalDataError: it does not open)."""
    secret = unwrap(sealed, business_id, _binding(endpoint_id))
    return wrap(master, business_id, _binding(endpoint_id), secret)
