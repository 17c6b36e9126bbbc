"""Prometheus metrics: orderflow's own catalogue (``ops.shared.web.exposition`` serves it).

Services, actors and the wiring observe through the functions below, so a metric's
name and labels live in one place (docs/observability.md has the table). Where the
numbers leave the process:

- HTTP fronts answer ``GET /metrics`` (a public path) from this process's registry;
  standalone mode runs everything in one process, so its fronts show everything.
- Relays serve their registry on a port of their own (``exposition.serve``).
- Dramatiq worker processes write to the multiprocess directory that Dramatiq's own
  exporter serves: the worker entry point (``ops.worker``) points
  ``PROMETHEUS_MULTIPROC_DIR`` at it before anything imports ``prometheus_client``.
  Gauges therefore declare a multiprocess mode.

Observations are made where the change happens, inside the step's transaction: a
step that rolls back and is retried may be counted twice (rare; rates stay right).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"  # the route label of a path no route matches (a 404)
OTHER_METHOD = "OTHER"  # the method label of a method Falcon does not know
SAGA_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

# -- HTTP --------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "orderflow_http_requests_total",
    "HTTP requests answered, by front, route template, method and status code.",
    ["service", "route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by front, route template and method.",
    ["service", "route", "method"],
)

# -- the saga ----------------------------------------------------------------------------

ORDERS = Gauge(
    "orderflow_orders",
    "Orders in each status (read from the orders database by the orders relay).",
    ["status"],
    multiprocess_mode="mostrecent",
)
SAGA_DURATION = Histogram(
    "orderflow_saga_duration_seconds",
    "Time from placing an order to its first settlement (confirmed, cancelled or paid).",
    ["outcome"],
    buckets=SAGA_BUCKETS,
)
COMPENSATIONS = Counter(
    "orderflow_compensations_total",
    "Orders cancelled, by cancel reason.",
    ["reason"],
)
INVOICES_VOIDED = Counter(
    "orderflow_invoices_voided_total",
    "Invoices voided by the compensation, by whether the payment is refunded.",
    ["refund"],
)
OLDEST_PENDING = Gauge(
    "orderflow_oldest_pending_order_age_seconds",
    "Age of the oldest order still pending; 0 when none is (orders relay).",
    ["service"],
    multiprocess_mode="mostrecent",
)
SAGA_TIMEOUT = Gauge(
    "orderflow_saga_timeout_seconds",
    "The saga deadline (ORDERS_SAGA_TIMEOUT) the orders relay enforces.",
    ["service"],
    multiprocess_mode="mostrecent",
)

# -- messaging ---------------------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "orderflow_outbox_backlog",
    "Outbox events not yet published to the broker (the service's relay).",
    ["service"],
    multiprocess_mode="mostrecent",
)
OUTBOX_LAG = Gauge(
    "orderflow_outbox_lag_seconds",
    "Age of the oldest unpublished outbox event; 0 when none waits (the service's relay).",
    ["service"],
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS_TOTAL = Counter(
    "orderflow_dead_letters_total",
    "Dead-letter records written: messages whose processing was given up.",
    ["service", "actor"],
)
# prometheus_client reserves a counter's name without ``_total`` as well, so it would
# refuse this gauge next to the counter above; the two series names do not clash in the
# text format we serve. The gauge is registered undescribed, which skips that check.
DEAD_LETTERS = Gauge(
    "orderflow_dead_letters",
    "Dead-letter records not yet replayed (the service's relay).",
    ["service"],
    multiprocess_mode="mostrecent",
    registry=None,
)
IDEMPOTENT_REPLAYS = Counter(
    "orderflow_idempotent_replays_total",
    "POST requests answered with the stored response of their Idempotency-Key.",
    ["service"],
)


class _Undescribed:
    """A collector the registry registers without checking its name for clashes."""

    def __init__(self, metric: Gauge) -> None:
        self.metric = metric

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return self.metric.collect()


REGISTRY.register(_Undescribed(DEAD_LETTERS))

for _refund in ("true", "false"):  # declared at 0, as declare_known does
    INVOICES_VOIDED.labels(_refund)


def declare_known(
    service: str,
    *,
    outcomes: Iterable[str] = (),
    cancel_reasons: Iterable[str] = (),
    actors: Iterable[str] = (),
) -> None:
    """Declare at 0 the series of labels that ``service`` knows in advance (as its module
    is imported), so that a first event shows as an increase: Prometheus sees none in a
    series that appears with the value 1."""
    IDEMPOTENT_REPLAYS.labels(service)
    for outcome in outcomes:
        SAGA_DURATION.labels(outcome)
    for reason in cancel_reasons:
        COMPENSATIONS.labels(reason)
    for actor in actors:
        DEAD_LETTERS_TOTAL.labels(service, actor)


# -- what services and actors call -------------------------------------------------------


def saga_settled(outcome: str, placed_at: dt.datetime, settled_at: dt.datetime) -> None:
    """An order reached its first settlement: ``confirmed``, ``cancelled`` or ``paid``."""
    if isinstance(placed_at, str):  # SQLite may hand back text
        placed_at = dt.datetime.fromisoformat(placed_at)
    SAGA_DURATION.labels(outcome).observe(max(0.0, (settled_at - placed_at).total_seconds()))


def compensated(reason: str) -> None:
    """An order was cancelled for ``reason`` (its invoice will be voided)."""
    COMPENSATIONS.labels(reason).inc()


def invoice_voided(refund: bool) -> None:
    """An invoice was voided; ``refund`` when it had been paid."""
    INVOICES_VOIDED.labels("true" if refund else "false").inc()


def dead_lettered(service: str, actor: str) -> None:
    """A dead-letter record was inserted (not for a message already recorded)."""
    DEAD_LETTERS_TOTAL.labels(service, actor).inc()


def idempotent_replay(service: str) -> None:
    """A POST was answered with the response stored under its Idempotency-Key."""
    IDEMPOTENT_REPLAYS.labels(service).inc()


# -- what the relay's gauge chore sets ---------------------------------------------------


def set_orders(counts: Mapping[str, int]) -> None:
    """Orders per status."""
    for status, count in counts.items():
        ORDERS.labels(status).set(count)


def set_outbox(service: str, backlog: int, oldest_age: float | None) -> None:
    """The outbox backlog and the age of its oldest event (None: nothing waits)."""
    OUTBOX_BACKLOG.labels(service).set(backlog)
    OUTBOX_LAG.labels(service).set(oldest_age or 0.0)


def set_dead_letters(service: str, unreplayed: int) -> None:
    """Dead-letter records not yet replayed."""
    DEAD_LETTERS.labels(service).set(unreplayed)


def set_pending(service: str, oldest_age: float, timeout: float) -> None:
    """The oldest pending order's age and the deadline that should have cancelled it."""
    OLDEST_PENDING.labels(service).set(oldest_age)
    SAGA_TIMEOUT.labels(service).set(timeout)
