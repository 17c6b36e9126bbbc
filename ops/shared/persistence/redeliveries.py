"""Redelivery counts: how often a message came back after its worker died holding it.

RabbitMQ redelivers a message whose consumer vanished without an ack, and a
classic queue does not count how often. A message that kills its worker
process every time (not an exception, which Dramatiq's ``Retries`` counts, but
a crash) would loop forever. Before a worker starts on a *redelivered*
message it counts the redelivery here, committed before the step runs, and
dead-letters the message once the count passes the limit. First deliveries,
the common case, cost nothing.
"""

from __future__ import annotations

import datetime as dt

import peewee

from ops.shared.values.clock import utcnow


class RedeliveryRecord(peewee.Model):
    """Fields of one message's count; each service subclasses it bound to its database."""

    message_id = peewee.CharField(max_length=64, primary_key=True)
    redeliveries = peewee.IntegerField()
    last_at = peewee.DateTimeField(index=True)


def count(model: type[RedeliveryRecord], message_id: str) -> int:
    """Add one redelivery of ``message_id`` and return its total, committed on return."""
    now = utcnow()
    with model._meta.database.atomic():
        model.insert(message_id=message_id, redeliveries=1, last_at=now).on_conflict(
            conflict_target=[model.message_id],
            update={model.redeliveries: model.redeliveries + 1, model.last_at: now},
        ).execute()
        return int(model.select(model.redeliveries).where(model.message_id == message_id).scalar())


def purge(model: type[RedeliveryRecord], older_than: dt.timedelta) -> int:
    """Forget counts untouched for ``older_than``; returns how many were removed."""
    cutoff = utcnow() - older_than
    return model.delete().where(model.last_at < cutoff).execute()
