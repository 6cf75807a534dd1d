"""Webhooks (issue 14): endpoints a business registers over HTTP (routes.py), and the
`ledger webhooks` worker (worker.py) that queues each matching event for each
endpoint and POSTs it, signed, in order, with retries."""
