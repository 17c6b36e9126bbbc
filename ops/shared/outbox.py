"""Transactional outbox: events stored in the same transaction as the state change.

A service writes its events with :func:`record` inside its own transaction; a
relay (``ops.shared.relay``) publishes them later with publisher confirms and
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

from ops.shared.clock import utcnow
from ops.shared.database import is_postgres
from ops.shared.tracing import current_carrier_json


class OutboxRecord(peewee.Model):
    """Fields of one outbox row; each service subclasses it bound to its database."""

    seq = peewee.BigAutoField()
    event_id = peewee.UUIDField(unique=True)
    event_type = peewee.CharField(max_length=64)
    aggregate_id = peewee.CharField(max_length=64, index=True)
    payload = peewee.TextField()
    created_at = peewee.DateTimeField(index=True)
    published_at = peewee.DateTimeField(null=True, index=True)
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
    PostgreSQL the relay is woken by ``NOTIFY`` at commit.
    """
    event_id = uuid.uuid4()
    model.create(
        event_id=event_id,
        event_type=event_type,
        aggregate_id=aggregate_id,
        payload=json.dumps(dict(payload), separators=(",", ":"), sort_keys=True),
        created_at=utcnow(),
        trace_context=current_carrier_json(),
    )
    database = model._meta.database
    if is_postgres(database):
        database.execute_sql(f"NOTIFY {channel(model)}")
    return event_id


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
