"""The monitors' query routes (monitors.py) as the OpenAPI document describes them."""

from __future__ import annotations

from services.api_docs.operation import POSITION_HEADER, Operation, answer, ref
from services.api_docs.parameters import path_text
from services.query_api.operations import MIN_POSITION
from shared import response_bodies as answers

OPERATIONS = [
    Operation(
        method="get",
        path="/api/v3/monitors",
        operation_id="listMonitors",
        summary="The business's balance monitors, oldest first",
        tag="queries",
        parameters=[MIN_POSITION],
        responses=[answer(ref(answers.MonitorsBody), 200, POSITION_HEADER)],
        errors=(422, 503),
    ),
    Operation(
        method="get",
        path="/api/v3/monitors/{id}",
        operation_id="getMonitor",
        summary="One balance monitor",
        tag="queries",
        parameters=[path_text("id", "The monitor's id (a UUID)."), MIN_POSITION],
        responses=[answer(ref(answers.MonitorBody), 200, POSITION_HEADER)],
        errors=(404, 422, 503),
    ),
]
