"""What ``orderflow dlq list`` shows: a table for people, full records as JSON for machines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from ops.dlq.records import Entry
from ops.shared.values.clock import isoformat

ERROR_WIDTH = 60
COLUMNS = (
    "ID",
    "SERVICE",
    "ACTOR",
    "DEDUPE KEY",
    "ORDER ID",
    "ERROR",
    "ATTEMPTS",
    "AGE",
    "REPLAYED",
)


def error_summary(error: str, width: int = ERROR_WIDTH) -> str:
    """The last non-empty line of a traceback (the exception), cut to ``width`` characters."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= width else last[: width - 1] + "…"


def age(seconds: float) -> str:
    """A short age: ``42s``, ``3m``, ``5h``, ``2d`` (the largest whole unit)."""
    seconds = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def seconds_since(moment: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds from ``moment`` to ``now`` (both naive UTC, as stored)."""
    return max(int((now - moment).total_seconds()), 0)


def to_dict(entry: Entry, now: dt.datetime) -> dict[str, Any]:
    """Every field of a dead letter, times in ISO 8601, its age in seconds and its
    message parsed (the raw text if it is not JSON)."""
    record = entry.record
    try:
        message: Any = json.loads(record.message)
    except ValueError:
        message = record.message
    return {
        "message_id": record.message_id,
        "service": entry.service,
        "queue_name": record.queue_name,
        "actor_name": record.actor_name,
        "dedupe_key": record.dedupe_key,
        "order_id": record.order_id,
        "error": record.error,
        "error_summary": error_summary(record.error),
        "attempts": record.attempts,
        "failed_at": isoformat(record.failed_at),
        "age_seconds": seconds_since(record.failed_at, now),
        "replayed_at": isoformat(record.replayed_at),
        "replayed_by": record.replayed_by,
        "message": message,
    }


def render_json(entries: Sequence[Entry], now: dt.datetime) -> str:
    """The entries as a JSON list (an empty list when there are none)."""
    return json.dumps([to_dict(entry, now) for entry in entries], indent=2)


def render_table(entries: Sequence[Entry], now: dt.datetime) -> str:
    """The entries as an aligned text table, or a line saying there are none."""
    if not entries:
        return "no dead letters"
    rows = [COLUMNS, *(_row(entry, now) for entry in entries)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _row(entry: Entry, now: dt.datetime) -> tuple[str, ...]:
    record = entry.record
    replayed = ""
    if record.replayed_at is not None:
        replayed = f"{age(seconds_since(record.replayed_at, now))} ago by {record.replayed_by}"
    return (
        record.message_id,
        entry.service,
        record.actor_name,
        record.dedupe_key or "-",
        record.order_id or "-",
        error_summary(record.error),
        str(record.attempts),
        age(seconds_since(record.failed_at, now)),
        replayed,
    )
