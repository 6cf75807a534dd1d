"""Every projection by name: the one list of the read models' projections.

The CLI's `--projection` choices and `ledger run`'s roles, the relay's queue
declarations, the migrator's schema files (projections/schemas.py: each projection's
folder is named after it) and every "how far" answer (projections/progress.py) read it
here; a new projection is added in this one place.
"""

from __future__ import annotations

from projections.balances.projector import projection as balances
from projections.runner import Projection
from projections.statements.projector import projection as statements

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (balances, statements)}
