"""The webhook worker's wiring (`ledger webhooks`): its openers, from
services/bootstrap.py."""

from __future__ import annotations

from functools import partial

from services import bootstrap
from services.webhooks.worker import WebhookWorker
from shared.config import Settings


def wire_webhooks(settings: Settings) -> WebhookWorker:
    """The webhook worker, with openers for its pool and its broker connection."""
    return WebhookWorker(
        settings,
        open_pool=partial(bootstrap.webhooks_pool, settings),
        open_broker=partial(bootstrap.webhooks_worker_broker, settings),
    )
