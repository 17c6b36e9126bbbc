"""The outbox's indexes after migration ``0005_outbox_indexes`` on the real PostgreSQL:
only the primary key and the partial index of unpublished rows, and every reader of the
outbox (relay, gauges, audit) finds the unpublished rows through that index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

import orders
from ops.shared.persistence.database import open_database
from ops.shared.persistence.migrations import migrate

from .cluster import throwaway_database

MIGRATIONS = Path(orders.__file__).parent / "migrations"


@pytest.fixture(scope="module")
def db(servers: str) -> Iterator[peewee.Database]:
    """A migrated orders database with 50,000 published events and 3 unpublished."""
    with throwaway_database("orderflow_test_outbox_indexes") as url:
        database = open_database(url)
        migrate(database, MIGRATIONS, "orders")
        database.execute_sql(
            "INSERT INTO orders_outbox (event_id, event_type, aggregate_id, payload,"
            " created_at, published_at, publish_attempts)"
            " SELECT md5(i::text)::uuid, 'OrderPlaced', md5(i::text), '{}',"
            " now() - interval '1 day', CASE WHEN i <= 50000 THEN now() END, 0"
            " FROM generate_series(1, 50003) AS i"
        )
        database.execute_sql("ANALYZE orders_outbox")
        yield database
        database.close()


def plan(db: peewee.Database, query: str) -> str:
    return "\n".join(row[0] for row in db.execute_sql(f"EXPLAIN {query}").fetchall())


def test_the_outbox_keeps_only_its_primary_key_and_the_unpublished_index(db) -> None:
    rows = db.execute_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'orders_outbox' ORDER BY 1"
    ).fetchall()

    assert [name for (name,) in rows] == ["orders_outbox_pkey", "orders_outbox_unpublished"]


@pytest.mark.parametrize(
    "reader",
    [
        # the relay's pending rows
        "SELECT * FROM orders_outbox WHERE published_at IS NULL ORDER BY seq LIMIT 100"
        " FOR UPDATE SKIP LOCKED",
        # the backlog gauge
        "SELECT count(seq), min(created_at) FROM orders_outbox WHERE published_at IS NULL",
        # the audit's stuck events
        "SELECT event_id FROM orders_outbox WHERE published_at IS NULL"
        " AND created_at < now() - interval '1 hour'",
    ],
    ids=["relay", "gauge", "audit"],
)
def test_each_reader_finds_unpublished_rows_through_the_partial_index(db, reader) -> None:
    explained = plan(db, reader)

    assert "orders_outbox_unpublished" in explained
    assert "Seq Scan" not in explained
