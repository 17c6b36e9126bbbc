"""Invoices schema, version 2: the trace context of each outbox event."""

import peewee


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("invoices_outbox", "trace_context", peewee.TextField(null=True)),
    )
