"""Tables of the invoices database. Only the invoices service imports this module."""

from __future__ import annotations

import peewee

from ops.shared.persistence.dead_letters import DeadLetterRecord
from ops.shared.persistence.dedupe import ProcessedMessageRecord
from ops.shared.persistence.idempotency import IdempotencyKeyRecord
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.redeliveries import RedeliveryRecord

# Initialised by the wiring (ops.bootstrap) with the invoices database; nothing connects here.
database = peewee.DatabaseProxy()


class BillingAccount(peewee.Model):
    customer_id = peewee.CharField(max_length=64, primary_key=True)
    credit_limit_minor = peewee.BigIntegerField()
    # the sum of the customer's issued, unpaid invoices, kept by every issue, payment and void
    outstanding_minor = peewee.BigIntegerField(default=0)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "billing_accounts"


class Invoice(peewee.Model):
    id = peewee.UUIDField(primary_key=True)
    sequence = peewee.BigIntegerField(unique=True)
    number = peewee.CharField(max_length=32, unique=True)
    order_id = peewee.CharField(max_length=64, unique=True)
    customer_id = peewee.CharField(max_length=64)
    total_minor = peewee.BigIntegerField()
    currency = peewee.CharField(max_length=3)
    status = peewee.CharField(max_length=16)
    issued_at = peewee.DateTimeField()
    paid_at = peewee.DateTimeField(null=True)
    voided_at = peewee.DateTimeField(null=True)
    void_reason = peewee.CharField(max_length=32, null=True)

    class Meta:
        database = database
        table_name = "invoices"
        indexes = (
            (("customer_id", "status"), False),
            (("issued_at", "id"), False),
        )


class InvoiceCounter(peewee.Model):
    """One row per numbering series; incremented inside the issuing transaction (gapless)."""

    name = peewee.CharField(max_length=32, primary_key=True)
    last_value = peewee.BigIntegerField()

    class Meta:
        database = database
        table_name = "invoice_counters"


class CancelledOrder(peewee.Model):
    """Tombstone: this order was cancelled, so its invoice must never be issued."""

    order_id = peewee.CharField(max_length=64, primary_key=True)
    reason = peewee.CharField(max_length=32)
    cancelled_at = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "cancelled_orders"


class OutboxEvent(OutboxRecord):
    class Meta:
        database = database
        table_name = "invoices_outbox"


class ProcessedMessage(ProcessedMessageRecord):
    class Meta:
        database = database
        table_name = "invoices_processed_messages"
        primary_key = peewee.CompositeKey("consumer", "dedupe_key")


class IdempotencyKey(IdempotencyKeyRecord):
    class Meta:
        database = database
        table_name = "invoices_idempotency_keys"


class DeadLetter(DeadLetterRecord):
    class Meta:
        database = database
        table_name = "invoices_dead_letters"


class Redelivery(RedeliveryRecord):
    class Meta:
        database = database
        table_name = "invoices_redeliveries"
