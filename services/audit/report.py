"""What `ledger audit verify` found: each difference, exactly, and the totals.

The report is also the body of GET /api/v3/audit/verify, which the client SDK decodes,
so its structs live with the other response bodies in the kernel
(shared/response_bodies.py); the audit names them from here.
"""

from __future__ import annotations

from shared.response_bodies import Difference, Report, Value

__all__ = ["Difference", "Report", "Value"]
