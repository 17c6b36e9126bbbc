"""Dedupe keys: a consumer's record of the messages it has already applied.

The key is the outbox event id carried by every message. :func:`claim` inserts
it under a unique constraint in the same transaction as the effect, so a
redelivered or duplicated message finds its key taken and has no second effect.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from ops.shared.persistence import compiled
from ops.shared.persistence.database import is_postgres
from ops.shared.values.clock import utcnow


class ProcessedMessageRecord(peewee.Model):
    """Fields of one applied message; each service subclasses it bound to its database."""

    consumer = peewee.CharField(max_length=64)
    dedupe_key = peewee.CharField(max_length=64)
    processed_at = peewee.DateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("consumer", "dedupe_key")


def claim(model: type[ProcessedMessageRecord], consumer: str, dedupe_key: str) -> bool:
    """Record ``dedupe_key`` for ``consumer``; False if it was already recorded.

    Must run inside the transaction that applies the message. Concurrent
    duplicates serialise on the primary key: the second waits for the first
    to commit and then sees the key taken.
    """
    statement = _CLAIMS.get(model)
    if statement is None:
        statement = _CLAIMS[model] = compiled.Statement(
            lambda p: model.insert(
                consumer=p("consumer"),
                dedupe_key=p("dedupe_key"),
                processed_at=p("processed_at", model.processed_at),
            ).on_conflict_ignore()
        )
    values = {"consumer": consumer, "dedupe_key": dedupe_key, "processed_at": utcnow()}
    return statement.rowcount(model._meta.database, values) == 1


def claim_all(
    model: type[ProcessedMessageRecord], consumer: str, dedupe_keys: Iterable[str]
) -> set[str]:
    """Record every key of ``dedupe_keys`` for ``consumer``; returns those recorded now
    (the others were recorded before, or by a concurrent transaction that committed).

    The batch form of :func:`claim`, with the same waits: on PostgreSQL one statement
    for all the keys, taken in sorted order so that two batches sharing keys never
    deadlock.
    """
    keys = sorted(set(dedupe_keys))
    database = model._meta.database
    if not is_postgres(database):
        return {key for key in keys if claim(model, consumer, key)}
    statement = _CLAIM_ALL.get(model)
    if statement is None:
        table = model._meta.table_name  # the model's own name, never input
        statement = _CLAIM_ALL[model] = compiled.Statement(
            lambda p: peewee.SQL(
                f"INSERT INTO {table} (consumer, dedupe_key, processed_at)"  # noqa: S608
                " SELECT %(consumer)s::text, k, %(now)s::timestamp"
                " FROM unnest(%(keys)s::text[]) AS k ORDER BY k"
                " ON CONFLICT DO NOTHING RETURNING dedupe_key"
            )
        )
    cursor = statement.execute(database, {"consumer": consumer, "keys": keys, "now": utcnow()})
    return {key for (key,) in cursor.fetchall()}


_CLAIMS: dict[type[ProcessedMessageRecord], compiled.Statement] = {}
_CLAIM_ALL: dict[type[ProcessedMessageRecord], compiled.Statement] = {}
