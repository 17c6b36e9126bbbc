"""Transactional outbox: events stored in the same transaction as the state change.

A service writes its events with :func:`record` inside its own transaction; a
relay (``ops.shared.persistence.relay``) publishes them later with publisher confirms and
marks them published only after the broker confirmed. A crash between the two
gives a duplicate publish, never a lost event: consumers dedupe by event id.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import peewee

from ops.shared.persistence import compiled
from ops.shared.persistence.database import is_postgres
from ops.shared.telemetry.tracing import current_carrier_json
from ops.shared.values.clock import utcnow


class OutboxRecord(peewee.Model):
    """Fields of one outbox row; each service subclasses it bound to its database."""

    # Indexes (migrations ``0005_outbox_indexes``): the primary key, and ``seq`` of the
    # unpublished rows (partial), which is all the relay, the gauges and the audit read.
    seq = peewee.BigAutoField()
    event_id = peewee.UUIDField()
    event_type = peewee.CharField(max_length=64)
    aggregate_id = peewee.CharField(max_length=64)
    payload = peewee.TextField()
    created_at = peewee.DateTimeField()
    published_at = peewee.DateTimeField(null=True)
    publish_attempts = peewee.IntegerField(default=0)
    trace_context = peewee.TextField(null=True)  # W3C traceparent of the causing request


def record(
    model: type[OutboxRecord],
    event_type: str,
    aggregate_id: str,
    payload: Mapping[str, Any],
) -> uuid.UUID:
    """Append an event to the outbox (call inside the caller's transaction).

    Returns the event id, which travels with every message built from the event
    as its dedupe key. The current trace context is stored with the event, so the
    relay's publish and every step after it join the trace of the cause. On
    PostgreSQL the relay is woken by ``NOTIFY`` at commit. Both writes are
    deferred: they reach the database with the unit of work's next statement
    or its end (:mod:`ops.shared.persistence.compiled`).
    """
    event_id = uuid.uuid4()
    database = model._meta.database
    insert, notify = _statements(model)
    values = {
        "event_id": event_id,
        "event_type": event_type,
        "aggregate_id": aggregate_id,
        "payload": json.dumps(dict(payload), separators=(",", ":"), sort_keys=True),
        "created_at": utcnow(),
        "trace_context": current_carrier_json(),
    }
    compiled.defer(database, insert, values)
    if is_postgres(database):
        compiled.defer_once(database, notify, {})  # one per transaction is enough
    return event_id


_STATEMENTS: dict[type[OutboxRecord], tuple[compiled.Statement, compiled.Statement]] = {}


def _statements(model: type[OutboxRecord]) -> tuple[compiled.Statement, compiled.Statement]:
    """The outbox insert and the ``NOTIFY`` of ``model``, compiled once."""
    statements = _STATEMENTS.get(model)
    if statements is None:
        insert = compiled.Statement(
            lambda p: model.insert(
                event_id=p("event_id", model.event_id),
                event_type=p("event_type"),
                aggregate_id=p("aggregate_id"),
                payload=p("payload"),
                created_at=p("created_at", model.created_at),
                published_at=peewee.SQL("NULL"),
                publish_attempts=peewee.SQL("0"),
                trace_context=p("trace_context"),
            )
        )
        notify = compiled.Statement(
            lambda p: peewee.SQL(f"NOTIFY {channel(model)}"), prepared=False
        )
        statements = _STATEMENTS[model] = (insert, notify)
    return statements


def channel(model: type[OutboxRecord]) -> str:
    """The PostgreSQL NOTIFY channel on which the outbox announces new rows."""
    return f"{model._meta.table_name}_new"


def backlog(model: type[OutboxRecord]) -> tuple[int, float | None]:
    """Number of unpublished events and the age in seconds of the oldest one."""
    query = model.select(peewee.fn.COUNT(model.seq), peewee.fn.MIN(model.created_at)).where(
        model.published_at.is_null()
    )
    count, oldest = query.scalar(as_tuple=True)
    if not count:
        return 0, None
    if isinstance(oldest, str):  # SQLite returns aggregates of datetimes as text
        oldest = dt.datetime.fromisoformat(oldest)
    return int(count), (utcnow() - oldest).total_seconds()
