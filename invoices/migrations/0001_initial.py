"""Invoices schema, version 1: accounts, invoices, counter, tombstones and kernel tables."""

import peewee

from ops.shared.persistence.migrations import kernel_tables_v1


def up(migrator, db):
    class BillingAccount(db.Model):
        customer_id = peewee.CharField(max_length=64, primary_key=True)
        credit_limit_minor = peewee.BigIntegerField()
        created_at = peewee.DateTimeField()
        updated_at = peewee.DateTimeField()

        class Meta:
            table_name = "billing_accounts"

    class Invoice(db.Model):
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
            table_name = "invoices"
            indexes = (
                (("customer_id", "status"), False),
                (("issued_at", "id"), False),
            )

    class InvoiceCounter(db.Model):
        name = peewee.CharField(max_length=32, primary_key=True)
        last_value = peewee.BigIntegerField()

        class Meta:
            table_name = "invoice_counters"

    class CancelledOrder(db.Model):
        order_id = peewee.CharField(max_length=64, primary_key=True)
        reason = peewee.CharField(max_length=32)
        cancelled_at = peewee.DateTimeField()

        class Meta:
            table_name = "cancelled_orders"

    db.create_tables(
        [BillingAccount, Invoice, InvoiceCounter, CancelledOrder, *kernel_tables_v1(db, "invoices")]
    )
    InvoiceCounter.insert(name="invoice", last_value=0).on_conflict_ignore().execute()
