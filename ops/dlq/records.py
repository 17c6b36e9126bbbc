"""Finding dead-letter records in both services' databases.

A record's ``message_id`` is unique system-wide (Dramatiq's uuid4, or a fresh
uuid4 for an undecodable body), so operators name a record by it alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ops.services import described
from ops.shared.persistence.dead_letters import DeadLetterRecord


@dataclasses.dataclass(frozen=True)
class Entry:
    """One dead letter and the service whose database holds it."""

    service: str
    record: DeadLetterRecord


def newest_first(
    services: Iterable[str], *, include_replayed: bool = False, limit: int | None = None
) -> list[Entry]:
    """The dead letters of ``services``, newest failure first; unreplayed only by default.

    ``limit`` caps the merged list (each database is asked for at most that many)."""
    entries = []
    for service in services:
        model = described(service).dead_letters
        query = model.select().order_by(model.failed_at.desc(), model.id.desc())
        if not include_replayed:
            query = query.where(model.replayed_at.is_null())
        if limit is not None:
            query = query.limit(limit)
        entries.extend(Entry(service, record) for record in query)
    entries.sort(key=lambda entry: entry.record.failed_at, reverse=True)
    return entries if limit is None else entries[:limit]


def count(services: Iterable[str], *, include_replayed: bool = False) -> int:
    """How many dead letters ``newest_first`` would return without a limit."""
    total = 0
    for service in services:
        model = described(service).dead_letters
        query = model.select()
        if not include_replayed:
            query = query.where(model.replayed_at.is_null())
        total += query.count()
    return total


def find(message_id: str, services: Iterable[str]) -> Entry | None:
    """The dead letter with this message id in one of ``services``, or None."""
    for service in services:
        model = described(service).dead_letters
        record = model.get_or_none(model.message_id == message_id)
        if record is not None:
            return Entry(service, record)
    return None
