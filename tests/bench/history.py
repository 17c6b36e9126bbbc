"""History: settled orders and their invoices loaded before a run (``--history N``).

An empty database flatters every query: the credit rule's sum over a
customer's issued invoices, the gauges' counts, each index's depth. With
``--history N`` each orderflow and naive run starts on ``N`` settled orders
(every tenth paid, the rest confirmed) with their invoices, created over the
past 30 days by 10,000 customers ``bench-c0`` … ``bench-c9999`` (the
benchmark's own customers ``bench-c0`` … ``bench-c49`` among them), and what
the saga leaves behind them: timeline steps, published outbox events, dedupe
keys, billing accounts, the invoice counter at ``N`` (:mod:`tests.bench.history_sql`).

The server makes the rows (``INSERT … SELECT … FROM generate_series``), at
most :data:`~tests.bench.history_sql.CHUNK` a transaction, into the tables as
the system's own migrations left them: each statement names only the columns
the table has; a table's indexes are dropped before its rows and rebuilt after
them (a sort each, instead of a million random insertions). Order ``i`` has ids
derived from ``i``, so the orders and invoices databases agree without a join
across them. Then each table is
vacuumed and analysed and a checkpoint is taken, so that neither autovacuum
nor the checkpointer does that work during the measured phases.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions

from invoices.domain import NUMBER_PREFIX, format_number
from tests.bench import history_sql, system
from tests.bench.history_sql import PLANS, Insert, SchemaMismatch

Connection = psycopg2.extensions.connection
INDEXES = """
SELECT x.relname, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
  FROM pg_index AS i
  JOIN pg_class AS x ON x.oid = i.indexrelid
  LEFT JOIN pg_constraint AS c
    ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
 WHERE i.indrelid = to_regclass(%s)
   AND NOT EXISTS (
       SELECT 1 FROM pg_constraint AS f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
"""


@dataclass(frozen=True)
class Index:
    """An index of a table, dropped before its rows are loaded and rebuilt after (one
    sort instead of a million random insertions); ``constraint`` is the definition of the
    primary key or unique constraint it backs, if any."""

    name: str
    definition: str  # CREATE [UNIQUE] INDEX …
    constraint: str | None = None  # PRIMARY KEY (…) / UNIQUE (…)

    def drop_sql(self, table: str) -> str:
        """The statement that drops the index (or its constraint)."""
        if self.constraint is not None:
            return f"ALTER TABLE {table} DROP CONSTRAINT {_quoted(self.name)}"
        return f"DROP INDEX {_quoted(self.name)}"

    def restore_sql(self, table: str) -> str:
        """The statement that builds it again as it was."""
        if self.constraint is not None:
            return f"ALTER TABLE {table} ADD CONSTRAINT {_quoted(self.name)} {self.constraint}"
        return self.definition


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load(name: str, databases: tuple[str, ...], count: int, credit_limit: str) -> dict[str, Any]:
    """Load ``count`` settled orders into the migrated ``databases`` of system ``name``
    (``orderflow`` or ``naive``); returns the seconds of each table and of the whole."""
    width = len(format_number(1)) - len(NUMBER_PREFIX)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    limit = history_sql.minor_units(credit_limit)
    params = history_sql.parameters(count, limit, now, NUMBER_PREFIX, width)
    began = time.monotonic()
    seconds: dict[str, float] = {}
    for database in PLANS[name]:
        connection = psycopg2.connect(system.pg_dsn(databases[database.index]))
        try:
            for table, inserts in database.tables().items():
                seconds[table] = _table(connection, table, inserts, params)
            for statement in database.then:
                _execute(connection, statement, params)
            if database.index == 1:
                _check_numbers(connection, count)
            tables = list(database.tables())
            seconds[f"vacuum analyze {databases[database.index]}"] = _vacuum(connection, tables)
        finally:
            connection.close()
    seconds["checkpoint"] = _checkpoint()
    total = round(time.monotonic() - began, 2)
    print(f"bench: history of {count} orders loaded in {total:.1f} s (not measured)", flush=True)
    return {"orders": count, "load_s": total, "seconds": seconds}


def _table(
    connection: Connection, table: str, inserts: list[Insert], params: dict[str, Any]
) -> float:
    """Load ``table``: drop its indexes, run its inserts (a chunk a transaction), rebuild
    the indexes; prints and returns the seconds."""
    existing, must_fill = _columns(connection, table)
    statements = [history_sql.insert_sql(insert, existing, must_fill) for insert in inserts]
    if None in statements:
        print(f"bench: history: {table} skipped (no such table, or no {sorted(inserts[0].needs)})")
        return 0.0
    began = time.monotonic()
    indexes = _indexes(connection, table)
    for index in indexes:
        _execute(connection, index.drop_sql(table))
    rows = 0
    for insert, statement in zip(inserts, statements, strict=True):
        ranges = history_sql.chunks(params["count"]) if insert.chunked else [(0, 0)]
        for low, high in ranges:
            rows += _execute(connection, str(statement), {**params, "low": low, "high": high})
    for index in indexes:
        _execute(connection, index.restore_sql(table))
    took = round(time.monotonic() - began, 2)
    print(f"bench: history: {table:<28} {rows:>9} rows {took:>6.1f} s", flush=True)
    return took


def _execute(connection: Connection, statement: str, params: dict[str, Any] | None = None) -> int:
    """Run one statement in a transaction of its own; returns the rows it touched. Without
    ``params`` psycopg2 leaves the statement as it is (an index definition may hold a ``%``)."""
    with connection, connection.cursor() as cursor:
        cursor.execute(statement, params)
        return int(cursor.rowcount)


def _columns(connection: Connection, table: str) -> tuple[set[str], set[str]]:
    """The columns of ``table``, and those of them ``NOT NULL`` without a default."""
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL "
            "FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        rows = cursor.fetchall()
    return {name for name, _ in rows}, {name for name, required in rows if required}


def _indexes(connection: Connection, table: str) -> list[Index]:
    """The indexes of ``table`` but those a foreign key relies on (none in these schemas)."""
    with connection, connection.cursor() as cursor:
        cursor.execute(INDEXES, (table,))
        return [Index(*row) for row in cursor.fetchall()]


def _check_numbers(connection: Connection, count: int) -> None:
    """Raise unless the first and last invoice numbers are those ``format_number`` gives."""
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT sequence, number FROM invoices WHERE sequence IN (1, %s)", (count,))
        wrong = [(seq, number) for seq, number in cursor.fetchall() if number != format_number(seq)]
    if wrong:
        raise SchemaMismatch(f"history invoice numbers differ from format_number: {wrong}")


def _vacuum(connection: Connection, tables: list[str]) -> float:
    """``VACUUM (ANALYZE)`` each of ``tables``; returns the seconds."""
    began = time.monotonic()
    connection.autocommit = True  # VACUUM runs outside a transaction
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return round(time.monotonic() - began, 2)


def _checkpoint() -> float:
    """A checkpoint, so that the load's dirty pages are written before the run; the seconds."""
    began = time.monotonic()
    connection = psycopg2.connect(system.PG_ADMIN_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    finally:
        connection.close()
    return round(time.monotonic() - began, 2)
