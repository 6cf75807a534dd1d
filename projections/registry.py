"""Every projection by name: the one list of the read models' projections, and the
name of the queues that feed them.

The projector (it applies them all), `ledger replay`'s `--projection` choices, the
migrator's schema files (projections/schemas.py: each projection's folder is named
after it) and every "how far" answer (projections/progress.py) read it here; a new
projection is added in this one place.
"""

from __future__ import annotations

from projections.balances.projector import projection as balances
from projections.runner import Projection
from projections.statements.projector import projection as statements

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (balances, statements)}

# A projector applies every projection, in one transaction per batch (one statement
# for the common batch: projections/batch_statement.py), from one set of partition
# queues named after this (`<prefix>read-models`, `.0`, `.1`, ... with partitions).
# An earlier version had a set of queues and a projector per projection
# (projections/legacy_queues.py drains them once).
QUEUES = "read-models"
