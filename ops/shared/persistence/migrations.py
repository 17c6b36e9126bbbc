"""Versioned schema migrations, run by ``orderflow migrate`` and safe to run twice.

Each service keeps numbered scripts in its ``migrations/`` folder (peewee's
migration runner: ``up(migrator, db)``), recorded in its own history table.
On PostgreSQL an advisory lock makes concurrent runs wait for each other.
Migrations freeze their table definitions; they never import the live models.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import peewee
from playhouse.migrations import Runner

from ops.shared.persistence.database import is_postgres

MIGRATION_LOCK = 0x6F72646572666C6F  # "orderflo"


def migrate(database: peewee.Database, directory: Path, service: str) -> list[str]:
    """Apply pending migrations of ``service``; returns the names applied (empty if none)."""
    runner = Runner(database, str(directory), table_name=f"{service}_schema_migrations")
    with database.connection_context():
        if is_postgres(database):
            database.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return runner.up()
        finally:
            if is_postgres(database):
                database.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def status(
    database: peewee.Database, directory: Path, service: str
) -> list[tuple[str, dt.datetime | None]]:
    """Each migration of ``service`` in order, with when it was applied (None: pending).
    Applies nothing."""
    runner = Runner(database, str(directory), table_name=f"{service}_schema_migrations")
    with database.connection_context():
        return [(m.name, m.applied) for m in runner.status()]


def pending(database: peewee.Database, directory: Path, service: str) -> list[str]:
    """Names of the migrations of ``service`` not applied yet."""
    runner = Runner(database, str(directory), table_name=f"{service}_schema_migrations")
    with database.connection_context():
        return [m.name for m in runner.status() if m.applied is None and m.path is not None]


def kernel_tables_v1(db: peewee.Database, prefix: str) -> list[type[peewee.Model]]:
    """Frozen (version 1) outbox, dedupe, idempotency and dead-letter tables for one service."""

    class Outbox(db.Model):  # type: ignore[name-defined,misc]
        seq = peewee.BigAutoField()
        event_id = peewee.UUIDField(unique=True)
        event_type = peewee.CharField(max_length=64)
        aggregate_id = peewee.CharField(max_length=64, index=True)
        payload = peewee.TextField()
        created_at = peewee.DateTimeField(index=True)
        published_at = peewee.DateTimeField(null=True, index=True)
        publish_attempts = peewee.IntegerField(default=0)

        class Meta:
            table_name = f"{prefix}_outbox"

    class ProcessedMessages(db.Model):  # type: ignore[name-defined,misc]
        consumer = peewee.CharField(max_length=64)
        dedupe_key = peewee.CharField(max_length=64)
        processed_at = peewee.DateTimeField()

        class Meta:
            table_name = f"{prefix}_processed_messages"
            primary_key = peewee.CompositeKey("consumer", "dedupe_key")

    class IdempotencyKeys(db.Model):  # type: ignore[name-defined,misc]
        scope_key = peewee.CharField(max_length=64, primary_key=True)
        fingerprint = peewee.CharField(max_length=64)
        status = peewee.IntegerField()
        body = peewee.TextField()
        headers = peewee.TextField()
        created_at = peewee.DateTimeField()
        expires_at = peewee.DateTimeField(index=True)

        class Meta:
            table_name = f"{prefix}_idempotency_keys"

    class DeadLetters(db.Model):  # type: ignore[name-defined,misc]
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

        class Meta:
            table_name = f"{prefix}_dead_letters"

    return [Outbox, ProcessedMessages, IdempotencyKeys, DeadLetters]


def redeliveries_table_v1(db: peewee.Database, prefix: str) -> type[peewee.Model]:
    """Frozen (version 1) redelivery-count table for one service."""

    class Redeliveries(db.Model):  # type: ignore[name-defined,misc]
        message_id = peewee.CharField(max_length=64, primary_key=True)
        redeliveries = peewee.IntegerField()
        last_at = peewee.DateTimeField(index=True)

        class Meta:
            table_name = f"{prefix}_redeliveries"

    return Redeliveries


# The outbox indexes of version 1 that no query needs (the relay, the gauges and the
# audit all look for unpublished rows; nothing looks events up by id or aggregate).
_OUTBOX_V1_INDEXES = ("outbox_aggregate_id", "outbox_created_at", "outbox_event_id")


def slim_outbox_indexes(db: peewee.Database, prefix: str) -> None:
    """Outbox indexes, version 2: the primary key and a partial index of the unpublished
    rows' ``seq``, instead of five indexes that every insert and every publish (an update
    of an indexed column) had to write, two of them on random keys."""
    table = f"{prefix}_outbox"
    db.execute_sql(
        f'CREATE INDEX IF NOT EXISTS "{table}_unpublished" ON "{table}" (seq)'
        " WHERE published_at IS NULL"
    )
    for name in (*_OUTBOX_V1_INDEXES, "outbox_published_at"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
