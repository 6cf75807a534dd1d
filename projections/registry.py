"""Every projection by name."""

from __future__ import annotations

from projections.balances.projector import projection as balances
from projections.runner import Projection
from projections.statements.projector import projection as statements

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (balances, statements)}
