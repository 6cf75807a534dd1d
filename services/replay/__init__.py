"""`ledger replay`: rebuild read models from the events, beside the live ones."""
