"""The health and metrics routes (health.py, metrics.py) as the OpenAPI document
describes them: public, for probes and scrapers."""

from __future__ import annotations

from services.api_docs.operation import answer, content, public_get, ref
from services.http.health import HealthBody, ReadyBody

BODIES = (HealthBody, ReadyBody)
OPERATIONS = [
    public_get(
        "health", "/healthz", "healthz", "The process serves", answer(ref(HealthBody))
    ),
    public_get(
        "health",
        "/metrics",
        "metrics",
        "Prometheus metrics (text exposition format)",
        content("Metrics", "text/plain", {"type": "string"}),
    ),
    public_get(
        "health",
        "/readyz",
        "readyz",
        "PostgreSQL, RabbitMQ and projection lag are fine",
        answer(ref(ReadyBody)),
        answer(ref(ReadyBody), 503, description="Not ready"),
    ),
]
