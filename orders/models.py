"""Tables of the orders database. Only the orders service imports this module."""

from __future__ import annotations

import peewee

from ops.shared.persistence.dead_letters import DeadLetterRecord
from ops.shared.persistence.dedupe import ProcessedMessageRecord
from ops.shared.persistence.idempotency import IdempotencyKeyRecord
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.redeliveries import RedeliveryRecord

# Initialised by the wiring (ops.bootstrap) with the orders database; nothing connects here.
database = peewee.DatabaseProxy()


class Order(peewee.Model):
    id = peewee.UUIDField(primary_key=True)
    customer_id = peewee.CharField(max_length=64)
    lines = peewee.TextField()  # JSON list of {sku, quantity, unit_price}
    total_minor = peewee.BigIntegerField()
    currency = peewee.CharField(max_length=3)
    status = peewee.CharField(max_length=16)
    cancel_reason = peewee.CharField(max_length=32, null=True)
    invoice_id = peewee.UUIDField(null=True)
    invoice_number = peewee.CharField(max_length=32, null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    settled_at = peewee.DateTimeField(null=True)  # first confirmed/paid/cancelled
    trace_context = peewee.TextField(null=True)  # the placing request's, for the deadline

    class Meta:
        database = database
        table_name = "orders"
        indexes = (
            (("customer_id", "created_at", "id"), False),
            (("status", "created_at"), False),
            (("created_at", "id"), False),
        )


class OrderStep(peewee.Model):
    """One step of an order's saga as it happened: the timeline clients see."""

    seq = peewee.BigAutoField()
    order_id = peewee.UUIDField(index=True)
    at = peewee.DateTimeField()
    event = peewee.CharField(max_length=64)
    outcome = peewee.CharField(max_length=32)
    detail = peewee.CharField(max_length=255)
    dedupe_key = peewee.CharField(max_length=64, null=True)
    trace_id = peewee.CharField(max_length=32, null=True)

    class Meta:
        database = database
        table_name = "order_steps"


class OutboxEvent(OutboxRecord):
    class Meta:
        database = database
        table_name = "orders_outbox"


class ProcessedMessage(ProcessedMessageRecord):
    class Meta:
        database = database
        table_name = "orders_processed_messages"
        primary_key = peewee.CompositeKey("consumer", "dedupe_key")


class IdempotencyKey(IdempotencyKeyRecord):
    class Meta:
        database = database
        table_name = "orders_idempotency_keys"


class DeadLetter(DeadLetterRecord):
    class Meta:
        database = database
        table_name = "orders_dead_letters"


class Redelivery(RedeliveryRecord):
    class Meta:
        database = database
        table_name = "orders_redeliveries"
