"""Prometheus metrics of every Loupe process: every name, label and bucket lives here.

Each process serves them on GET /metrics (the gateway on its port, message-only services on their
health port). Labels are bounded: route templates, never paths with project names in them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

HTTP_REQUEST_SECONDS = Histogram(
    "loupe_http_request_seconds", "Gateway requests, from the first byte in to the last byte out.",
    ["method", "route", "status"], buckets=_LATENCY_BUCKETS)
HANDLER_SECONDS = Histogram(
    "loupe_handler_seconds", "Commands handled by a service (request/reply over Kafka).",
    ["service", "operation", "outcome"], buckets=_LATENCY_BUCKETS)
CONSUMER_LAG = Gauge(
    "loupe_kafka_consumer_lag", "Records not yet consumed by this process's consumers (log end minus "
    "position, summed over the assigned partitions; refreshed every few seconds).", ["group", "topic"])
MODELS_LOADED = Gauge("loupe_models_loaded", "Model versions loaded in this inference worker.")
TRAINING_SECONDS = Histogram(
    "loupe_training_seconds", "Training runs, from start to final status.", ["outcome"],
    buckets=(5, 10, 30, 60, 120, 300, 600, 1800, 3600))
INGEST_RESULTS_TOTAL = Counter(
    "loupe_ingest_results_total", "Results published for images on the ingest topic, by result code "
    "(`ok` or the AILabTools error code).", ["code"])


def exposition() -> tuple[bytes, str]:
    """The body and content type of GET /metrics."""
    return generate_latest(), CONTENT_TYPE_LATEST
