"""Orders schema, version 1: orders plus the outbox, dedupe, idempotency and dead-letter tables."""

import peewee

from ops.shared.persistence.migrations import kernel_tables_v1


def up(migrator, db):
    class Order(db.Model):
        id = peewee.UUIDField(primary_key=True)
        customer_id = peewee.CharField(max_length=64)
        lines = peewee.TextField()
        total_minor = peewee.BigIntegerField()
        currency = peewee.CharField(max_length=3)
        status = peewee.CharField(max_length=16)
        cancel_reason = peewee.CharField(max_length=32, null=True)
        invoice_id = peewee.UUIDField(null=True)
        invoice_number = peewee.CharField(max_length=32, null=True)
        created_at = peewee.DateTimeField()
        updated_at = peewee.DateTimeField()
        settled_at = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "orders"
            indexes = (
                (("customer_id", "created_at", "id"), False),
                (("status", "created_at"), False),
                (("created_at", "id"), False),
            )

    db.create_tables([Order, *kernel_tables_v1(db, "orders")])
