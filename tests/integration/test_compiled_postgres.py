"""Compiled statements and deferred writes (``ops.shared.persistence.compiled``) on the
real PostgreSQL: server-side prepared statements, and a unit's writes sent in one round trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import peewee
import psycopg2.extensions
import pytest

from ops.shared.persistence import compiled
from ops.shared.persistence.database import open_database, unit_of_work

from .cluster import throwaway_database

database = peewee.DatabaseProxy()


class Item(peewee.Model):
    """A throwaway table: a client-side UUID key, so its inserts can be deferred."""

    id = peewee.UUIDField(primary_key=True)
    name = peewee.TextField(unique=True)

    class Meta:
        database = database
        table_name = "compiled_item"


INSERT = compiled.Statement(lambda p: Item.insert(id=p("id", Item.id), name=p("name")))
COUNT = compiled.Statement(lambda p: Item.select(peewee.fn.COUNT(Item.id)))
NAME_OF = compiled.Statement(lambda p: Item.select(Item.name).where(Item.id == p("id", Item.id)))


class Boom(Exception):
    """An error raised by the test inside a unit of work."""


@pytest.fixture(scope="module")
def database_url(servers: str) -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped afterwards."""
    with throwaway_database("orderflow_test_compiled") as url:
        yield url


@pytest.fixture
def sent() -> list[str]:
    """Every query string the test's connections sent, one per round trip."""
    return []


@pytest.fixture
def db(database_url: str, sent: list[str]) -> Iterator[peewee.DatabaseProxy]:
    class RecordingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):  # type: ignore[no-untyped-def]
            sent.append(query.decode() if isinstance(query, bytes) else query)
            return super().execute(query, vars)

    postgres = open_database(database_url, cursor_factory=RecordingCursor)
    database.initialize(postgres)
    postgres.create_tables([Item])
    Item.delete().execute()
    sent.clear()
    yield database
    postgres.close()


def an_item(name: str) -> dict:
    return {"id": uuid.uuid4(), "name": name}


def prepares(sent: list[str], statement: compiled.Statement) -> int:
    return sum(
        query.removeprefix("BEGIN;").startswith(f"PREPARE {statement.name} ") for query in sent
    )


def test_deferred_inserts_and_the_next_query_go_in_one_round_trip(db, sent) -> None:
    # Given both statements already prepared on this connection
    with unit_of_work(db):
        compiled.defer(db, INSERT, an_item("warm-up"))
        COUNT.first(db, {})

    with unit_of_work(db):
        # When a unit defers three inserts, then reads
        for name in ("a", "b", "c"):
            compiled.defer(db, INSERT, an_item(name))
        before = len(sent)
        count = COUNT.first(db, {})
        during = sent[before:]

    # Then the transaction's BEGIN, the inserts and the read travelled as one query
    # string, in order
    assert len(during) == 1
    statements = during[0].split(";")
    assert [s.split("(")[0] for s in statements] == ["BEGIN"] + [f"EXECUTE {INSERT.name}"] * 3 + [
        f"EXECUTE {COUNT.name}"
    ]
    # and the read saw the unit's own writes
    assert count == (4,)


def test_a_unit_that_only_defers_sends_its_writes_in_one_round_trip_before_commit(db, sent) -> None:
    # Given the insert already prepared on this connection
    compiled.defer(db, INSERT, an_item("warm-up"))
    sent.clear()

    # When a unit only defers writes
    with unit_of_work(db):
        for name in ("a", "b", "c"):
            compiled.defer(db, INSERT, an_item(name))

    # Then the unit cost one round trip: BEGIN, the writes and COMMIT together
    assert len(sent) == 1
    assert sent[0].startswith("BEGIN;")
    assert sent[0].count(f"EXECUTE {INSERT.name}(") == 3
    assert sent[0].endswith(";COMMIT")
    assert Item.select().count() == 4


def test_a_unit_that_sends_nothing_costs_no_round_trip(db, sent) -> None:
    sent.clear()

    with unit_of_work(db):
        pass

    assert sent == []


def test_a_unit_that_only_reads_sends_begin_with_its_read_and_commit_alone(db, sent) -> None:
    COUNT.first(db, {})  # prepared
    sent.clear()

    with unit_of_work(db):
        count = COUNT.first(db, {})

    assert count == (0,)
    assert sent == [f"BEGIN;EXECUTE {COUNT.name}", "COMMIT"]


def test_a_failed_statement_rolls_the_folded_transaction_back(db, sent) -> None:
    # Given a unit whose first statement begins the transaction and then fails
    with pytest.raises(peewee.ProgrammingError), unit_of_work(db):
        compiled.defer(db, INSERT, an_item("never"))
        db.execute_sql("SELECT * FROM no_such_table")

    # Then it was rolled back (nothing stored), and the connection works on
    assert sent[-1] == "ROLLBACK"
    with unit_of_work(db):
        compiled.defer(db, INSERT, an_item("after"))
    assert [item.name for item in Item.select()] == ["after"]
    assert db.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_values_with_percent_signs_and_quotes_survive_the_batch_intact(db) -> None:
    # Given names that look like SQL, quoting and driver placeholders
    names = [
        "100% sure",
        'O\'Brien said "hi"',
        "%(name)s and %s and %%",
        "back\\slash; DROP TABLE compiled_item; --",
    ]
    items = [an_item(name) for name in names]

    # When they are written in one deferred batch and read back in it
    with unit_of_work(db):
        for item in items:
            compiled.defer(db, INSERT, item)
        read_back = NAME_OF.first(db, {"id": items[2]["id"]})

    # Then every value is stored as it was given, bound once, never interpolated again
    assert read_back == (names[2],)
    assert {item.id: item.name for item in Item.select()} == {
        item["id"]: item["name"] for item in items
    }


def test_a_statement_is_prepared_once_per_connection(db, sent) -> None:
    # Given a statement this connection has not prepared yet
    statement = compiled.Statement(lambda p: Item.select(Item.name).where(Item.name == p("name")))
    compiled.defer(db, INSERT, an_item("x"))
    first_connection = db.connection()

    # When it runs twice
    assert statement.first(db, {"name": "x"}) == ("x",)
    assert statement.first(db, {"name": "x"}) == ("x",)

    # Then it was prepared by the first call only
    assert prepares(sent, statement) == 1
    assert sent[-1].startswith(f"EXECUTE {statement.name}(")
    prepared = db.execute_sql(
        "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", (statement.name,)
    ).fetchone()
    assert prepared == (1,)

    # When the connection is closed and a new one opened
    db.close()
    db.connect()
    assert db.connection() is not first_connection

    # Then the new connection prepares it again before running it
    assert statement.first(db, {"name": "x"}) == ("x",)
    assert prepares(sent, statement) == 2


def test_a_statement_prepared_in_a_unit_that_rolled_back_is_still_prepared(db, sent) -> None:
    # Given a statement first prepared inside a unit that then fails
    statement = compiled.Statement(lambda p: Item.select(peewee.fn.COUNT(Item.id)))
    with pytest.raises(Boom), unit_of_work(db):
        assert statement.first(db, {}) == (0,)
        raise Boom

    # When the next unit runs it on the same connection
    with unit_of_work(db):
        count = statement.first(db, {})

    # Then the server still knows it (PREPARE is not undone by a rollback)
    assert count == (0,)
    assert prepares(sent, statement) == 1


def test_a_unique_violation_in_a_deferred_batch_fails_the_unit_and_commits_nothing(
    db,
) -> None:
    # Given a stored row
    compiled.defer(db, INSERT, an_item("taken"))
    reached_the_end = False

    # When a unit defers writes of which one violates the unique name
    with pytest.raises(peewee.IntegrityError), unit_of_work(db):
        compiled.defer(db, INSERT, an_item("new-1"))
        compiled.defer(db, INSERT, an_item("taken"))
        compiled.defer(db, INSERT, an_item("new-2"))
        reached_the_end = True

    # Then the error surfaced as the unit ended, and nothing of the unit is committed
    assert reached_the_end
    assert [item.name for item in Item.select()] == ["taken"]

    # and the connection is usable for the next unit
    with unit_of_work(db):
        compiled.defer(db, INSERT, an_item("new-3"))
    assert Item.select().count() == 2


def test_a_connection_re_plans_its_statements_as_its_tables_grow(
    db, sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a connection that discards its plans after 16 executions, and a key look-up
    # it planned while the table was empty (a generic plan that scans the table)
    monkeypatch.setattr(compiled, "REPLAN_FIRST", 16)
    db.execute_sql("DROP TABLE IF EXISTS compiled_growing")
    db.execute_sql(  # shaped like the idempotency keys, whose claim this look-up is
        "CREATE TABLE compiled_growing (name varchar(64) PRIMARY KEY, fingerprint varchar(64),"
        " status int, body text, headers text, created_at timestamp, expires_at timestamp)"
    )
    lookup = compiled.Statement(
        lambda p: peewee.SQL(
            "SELECT u.name, g.fingerprint, g.body FROM unnest(%(names)s::text[]) AS u(name)"
            " LEFT JOIN compiled_growing AS g ON g.name = u.name"
        )
    )

    def plan() -> str:
        rows = db.execute_sql(f"EXPLAIN EXECUTE {lookup.name}(%s)", (["a", "b"],)).fetchall()
        return "\n".join(row[0] for row in rows)

    for _ in range(7):
        lookup.execute(db, {"names": ["a", "b"]})
    assert "Seq Scan on compiled_growing" in plan()

    # When the table grows to 20,000 rows and the connection goes on running it
    db.execute_sql(
        "INSERT INTO compiled_growing SELECT md5(i::text), 'f', 201, repeat('x', 200), '{}',"
        " now(), now() FROM generate_series(1, 20000) i"
    )
    for _ in range(16):
        assert lookup.first(db, {"names": ["a", "b"]}) is not None

    # Then it discarded its plans once, and the look-up now goes through the index
    assert sum(query.removeprefix("BEGIN;") == "DISCARD PLANS" for query in sent) == 1
    assert "Index Scan" in plan()
    assert "Seq Scan" not in plan()
    db.execute_sql("DROP TABLE compiled_growing")
