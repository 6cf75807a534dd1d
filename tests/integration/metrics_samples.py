"""Prometheus samples as the observability tests read them: a text exposition parsed
into samples by name and label set, one sample or a family of them, a scrape of an
app's /metrics, and the latency histogram's default buckets."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DEFAULT_BUCKETS = [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.075",
    "0.1",
    "0.25",
    "0.5",
    "0.75",
    "1.0",
    "2.5",
    "5.0",
    "7.5",
    "10.0",
    "+Inf",
]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def family(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        labels: value for (found, labels), value in samples.items() if found == name
    }


async def scrape(client: TestClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return parse(await response.text())
