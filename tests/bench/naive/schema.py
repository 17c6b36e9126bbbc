"""The naive chain's tables: ``orders`` and ``invoices``, shaped like orderflow's.

Same columns and indexes as orderflow's ``orders.models.Order`` and
``invoices.models.Invoice``, so both systems write rows of the same size; the
benchmark reads ``status``, ``created_at``, ``settled_at``, ``invoice_number``
and ``cancel_reason`` from either with the same SQL.
"""

from __future__ import annotations

import datetime as dt

import peewee
from playhouse import db_url

from tests.bench.naive import NaiveConfig

# Bound by bind() (or connect()); peewee opens one connection per thread on first use.
orders_db = peewee.DatabaseProxy()
invoices_db = peewee.DatabaseProxy()


class Order(peewee.Model):
    id = peewee.UUIDField(primary_key=True)
    customer_id = peewee.CharField(max_length=64)
    lines = peewee.TextField()  # JSON list of {sku, quantity, unit_price}
    total_minor = peewee.BigIntegerField()
    currency = peewee.CharField(max_length=3)
    status = peewee.CharField(max_length=16)  # pending, then confirmed
    cancel_reason = peewee.CharField(max_length=32, null=True)  # never set here
    invoice_id = peewee.UUIDField(null=True)
    invoice_number = peewee.CharField(max_length=32, null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    settled_at = peewee.DateTimeField(null=True)  # when it was confirmed
    trace_context = peewee.TextField(null=True)  # never set here: no tracing

    class Meta:
        database = orders_db
        table_name = "orders"
        indexes = (
            (("customer_id", "created_at", "id"), False),
            (("status", "created_at"), False),
            (("created_at", "id"), False),
        )


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
        database = invoices_db
        table_name = "invoices"
        indexes = (
            (("customer_id", "status"), False),
            (("issued_at", "id"), False),
        )


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime, as orderflow stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def bind(orders: peewee.Database, invoices: peewee.Database) -> None:
    """Point the models at these two databases."""
    orders_db.initialize(orders)
    invoices_db.initialize(invoices)


def connect(config: NaiveConfig) -> None:
    """Point the models at the databases of ``config`` (connections open lazily)."""
    bind(db_url.connect(config.orders_database_url), db_url.connect(config.invoices_database_url))


def migrate() -> None:
    """Create the tables and the invoice number sequence unless they exist (PostgreSQL)."""
    orders_db.create_tables([Order])
    invoices_db.create_tables([Invoice])
    invoices_db.execute_sql("CREATE SEQUENCE IF NOT EXISTS invoice_numbers")


def next_invoice_sequence() -> int:
    """The next invoice sequence number (numbers may have gaps: a sequence is not gapless)."""
    return int(invoices_db.execute_sql("SELECT nextval('invoice_numbers')").fetchone()[0])
