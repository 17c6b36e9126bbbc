"""Dead letters: the durable record of a message whose processing was given up.

RabbitMQ keeps the message itself in the queue's ``.XQ`` dead-letter queue,
but Dramatiq gives that queue a 7-day TTL; this record, in the owning
service's database, is what lasts and what operators read and replay.
"""

from __future__ import annotations

import peewee

from ops.shared.values.clock import utcnow


class DeadLetterRecord(peewee.Model):
    """Fields of one dead letter; each service subclasses it bound to its database."""

    message_id = peewee.CharField(max_length=64, unique=True)
    queue_name = peewee.CharField(max_length=64)
    actor_name = peewee.CharField(max_length=64, index=True)
    dedupe_key = peewee.CharField(max_length=64, null=True)
    order_id = peewee.CharField(max_length=64, null=True, index=True)
    message = peewee.TextField()
    error = peewee.TextField()
    attempts = peewee.IntegerField()
    failed_at = peewee.DateTimeField(index=True)
    replayed_at = peewee.DateTimeField(null=True)
    replayed_by = peewee.CharField(max_length=128, null=True)


def record(
    model: type[DeadLetterRecord],
    *,
    message_id: str,
    queue_name: str,
    actor_name: str,
    dedupe_key: str | None,
    order_id: str | None,
    message: str,
    error: str,
    attempts: int,
    unless_recorded: bool = False,
) -> bool:
    """Store a dead letter (inside the caller's transaction); False if already stored.

    Stored means: under the same ``message_id``; with ``unless_recorded``, also a record
    of the same queue and actor holding the same ``message`` (a redelivered body that is
    not a message, whose first delivery was recorded by a worker that then died)."""
    if unless_recorded:
        same = model.select(model.id).where(
            (model.queue_name == queue_name)
            & (model.actor_name == actor_name)
            & (model.message == message)
        )
        if same.exists():
            return False
    inserted = (
        model.insert(
            message_id=message_id,
            queue_name=queue_name,
            actor_name=actor_name,
            dedupe_key=dedupe_key,
            order_id=order_id,
            message=message,
            error=error[-4000:],
            attempts=attempts,
            failed_at=utcnow(),
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute()
    )
    return inserted == 1


def unreplayed(model: type[DeadLetterRecord]) -> int:
    """How many dead letters wait for an operator (not yet replayed)."""
    return model.select().where(model.replayed_at.is_null()).count()
