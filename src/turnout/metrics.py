"""Prometheus metrics, defined once here so every part counts into the same registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INGEST_ACCEPTED = Counter(
    "turnout_ingest_accepted_messages",
    "Messages accepted and durably committed to the log",
    ["source"],
    registry=REGISTRY,
)
INGEST_REJECTED = Counter(
    "turnout_ingest_rejected_messages",
    "Messages refused at ingest, by reason code",
    ["code"],
    registry=REGISTRY,
)
INGEST_SUPPRESSED = Counter(
    "turnout_ingest_suppressed_messages",
    "Messages of suppressed people: answered as accepted, neither stored nor delivered",
    ["source"],
    registry=REGISTRY,
)
INGEST_REQUESTS = Counter(
    "turnout_ingest_requests",
    "Tracking API requests by HTTP status",
    ["status"],
    registry=REGISTRY,
)
DELIVERY_MESSAGES = Counter(
    "turnout_delivery_messages",
    "Messages resolved per connection, by fate",
    ["connection", "fate"],
    registry=REGISTRY,
)
DELIVERY_FILTERED = Counter(
    "turnout_delivery_filtered_messages",
    "Messages filtered per connection, by who filtered them: consent, playbook (a rule or a"
    " function) or destination (its own filters)",
    ["connection", "by"],
    registry=REGISTRY,
)


def filtered_by(reason: str) -> str:
    """Who filtered a message, from its reason: the `by` label of DELIVERY_FILTERED."""
    if reason.startswith("consent:"):
        return "consent"
    if reason.startswith("playbook"):
        return "playbook"
    return "destination"


DELIVERY_RECEIVED = Counter(
    "turnout_delivery_received_messages",
    "Messages a connection's lane read from the log for its sources",
    ["connection"],
    registry=REGISTRY,
)
DELIVERY_RETRIES = Counter(
    "turnout_delivery_retries",
    "Send attempts that failed transiently and will be retried",
    ["connection"],
    registry=REGISTRY,
)
DELIVERY_BACKLOG = Gauge(
    "turnout_delivery_backlog_messages",
    "Messages in the log not yet resolved by the connection",
    ["connection"],
    registry=REGISTRY,
)
DELIVERY_BACKLOG_AGE = Gauge(
    "turnout_delivery_backlog_age_seconds",
    "Age of the oldest unresolved message of the connection",
    ["connection"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "turnout_delivery_request_seconds",
    "Duration of requests to the destination",
    ["connection"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMIT_WAITS = Counter(
    "turnout_delivery_rate_limit_wait_seconds",
    "Time requests waited for the connection's rate limit",
    ["connection"],
    registry=REGISTRY,
)
CONNECTION_STATE = Gauge(
    "turnout_connection_paused",
    "1 when the connection is paused (by a user or because credentials were rejected)",
    ["connection", "reason"],
    registry=REGISTRY,
)
HTTP_REFUSED = Counter(
    "turnout_http_refused",
    "Requests or connections the HTTP server refused at a limit of [server], by reason",
    ["reason"],
    registry=REGISTRY,
)
