"""Figures: exact nearest-rank percentiles, and what the databases say about the run's orders.

Saga figures come from the orders database, not from polling: ``created_at``
is stamped by the orders API in the transaction that accepts the order and
``settled_at`` by the worker in the transaction that confirms (or cancels)
it, both from the same host clock (naive UTC). Orders are selected by the
ids the API returned with its 201 answers, so warm-up orders and orders
whose answer never arrived are excluded.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions


def percentile(values: Sequence[float], p: float) -> float:
    """Exact nearest-rank percentile: the smallest value with at least ``p``% of values <= it."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean, p50/p95/p99 (nearest rank) and max of durations, in milliseconds."""
    if not seconds:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    millis = sorted(value * 1000 for value in seconds)
    return {
        "count": len(millis),
        "mean": round(sum(millis) / len(millis), 2),
        "p50": round(percentile(millis, 50), 2),
        "p95": round(percentile(millis, 95), 2),
        "p99": round(percentile(millis, 99), 2),
        "max": round(millis[-1], 2),
    }


def connect(dsn: str) -> psycopg2.extensions.connection:
    """An autocommit connection, so every poll sees the latest committed state."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    return connection


def pending_count(connection: psycopg2.extensions.connection, order_ids: list[str]) -> int:
    """How many of ``order_ids`` are still pending."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[]) AND status = 'pending'",
            (order_ids,),
        )
        return int(cursor.fetchone()[0])


@dataclass
class Drain:
    """The wait for every run order to settle."""

    drained: bool
    seconds: float  # from ``since`` (the end of the load) until drained or the deadline
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, pending)


def wait_settled(
    connection: psycopg2.extensions.connection,
    order_ids: list[str],
    timeout: float,
    since: float | None = None,
    interval: float = 0.5,
) -> Drain:
    """Poll until none of ``order_ids`` is pending, or ``timeout`` seconds pass.

    Times are measured from ``since`` (a ``time.monotonic()`` value; now by
    default), with the resolution of ``interval``.
    """
    return wait_drained(
        lambda: pending_count(connection, order_ids) if order_ids else 0,
        timeout,
        since,
        interval,
    )


def wait_drained(
    pending: Callable[[], int],
    timeout: float,
    since: float | None = None,
    interval: float = 0.5,
) -> Drain:
    """Poll ``pending()`` until it is 0, or ``timeout`` seconds pass since ``since``
    (``time.monotonic()``; now by default); the samples have ``interval``'s resolution."""
    started = time.monotonic() if since is None else since
    samples: list[tuple[float, int]] = []
    while True:
        left = pending()
        elapsed = time.monotonic() - started
        samples.append((round(elapsed, 2), left))
        if left == 0:
            return Drain(True, elapsed, samples)
        if elapsed >= timeout:
            return Drain(False, elapsed, samples)
        time.sleep(interval)


@dataclass(frozen=True)
class OrderRow:
    """What the benchmark reads of one order."""

    status: str
    cancel_reason: str | None
    created_at: dt.datetime
    settled_at: dt.datetime | None


def order_rows(connection: psycopg2.extensions.connection, order_ids: list[str]) -> list[OrderRow]:
    """Status and timestamps of ``order_ids``."""
    if not order_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, cancel_reason, created_at, settled_at FROM orders "
            "WHERE id = ANY(%s::uuid[])",
            (order_ids,),
        )
        return [OrderRow(*row) for row in cursor.fetchall()]


def saga_figures(rows: list[OrderRow]) -> dict[str, Any]:
    """End-to-end figures of the run's orders.

    Throughput is confirmed orders divided by the time from the first order's
    ``created_at`` (first accept) to the last confirmed order's ``settled_at``.
    Latency is ``settled_at - created_at`` of the confirmed orders.
    """
    by_status: dict[str, int] = {}
    cancel_reasons: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
        if row.cancel_reason:
            cancel_reasons[row.cancel_reason] = cancel_reasons.get(row.cancel_reason, 0) + 1
    confirmed = [row for row in rows if row.status == "confirmed" and row.settled_at is not None]
    figures: dict[str, Any] = {
        "orders_found": len(rows),
        "by_status": dict(sorted(by_status.items())),
        "cancel_reasons": dict(sorted(cancel_reasons.items())),
        "confirmed": len(confirmed),
        "first_accept_to_last_confirmation_s": None,
        "throughput_confirmed_per_s": None,
        "accept_to_confirmed_ms": summarize_ms(
            [(row.settled_at - row.created_at).total_seconds() for row in confirmed]  # type: ignore[operator]
        ),
    }
    if confirmed:
        first_accept = min(row.created_at for row in rows)
        last_confirmation = max(row.settled_at for row in confirmed)  # type: ignore[type-var]
        window = (last_confirmation - first_accept).total_seconds()
        figures["first_accept_to_last_confirmation_s"] = round(window, 3)
        if window > 0:
            figures["throughput_confirmed_per_s"] = round(len(confirmed) / window, 2)
    return figures
