"""Orders schema, version 3: the trace context of each order and of each outbox event."""

import peewee


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("orders", "trace_context", peewee.TextField(null=True)),
        migrator.add_column("orders_outbox", "trace_context", peewee.TextField(null=True)),
    )
