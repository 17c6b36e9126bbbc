"""Compiled statements and deferred writes (``ops.shared.persistence.compiled``) on SQLite."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from ops.shared.persistence import compiled
from ops.shared.persistence.database import open_database, unit_of_work

database = peewee.DatabaseProxy()


class Item(peewee.Model):
    """A throwaway table: a client-side UUID key, so its inserts can be deferred."""

    id = peewee.UUIDField(primary_key=True)
    name = peewee.CharField()
    created_at = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "compiled_item"


INSERT = compiled.Statement(
    lambda p: Item.insert(
        id=p("id", Item.id), name=p("name"), created_at=p("created_at", Item.created_at)
    )
)
COUNT = compiled.Statement(lambda p: Item.select(peewee.fn.COUNT(Item.id)))
BY_ID = compiled.Statement(lambda p: Item.select().where(Item.id == p("id", Item.id)))
RENAME = compiled.Statement(
    lambda p: Item.update(name=p("new")).where(Item.name == p("old")),
)


class Boom(Exception):
    """An error raised by the test inside a unit of work."""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[peewee.Database]:
    sqlite = open_database(f"sqlite:///{tmp_path / 'compiled.db'}")
    database.initialize(sqlite)
    sqlite.create_tables([Item])
    yield database
    sqlite.close()


def an_item(name: str = "widget") -> dict:
    return {"id": uuid.uuid4(), "name": name, "created_at": dt.datetime(2024, 5, 1, 12, 30)}


def stored() -> int:
    """Rows in the table, by a plain peewee query (which knows nothing of batches)."""
    return Item.select().count()


def test_a_statement_is_compiled_once_and_binds_named_values(db) -> None:
    # Given a statement whose build we can observe
    builds: list[bool] = []

    def build(p: compiled.Placeholder) -> peewee.Node:
        builds.append(p.postgres)
        return Item.select(Item.name).where(Item.id == p("id", Item.id))

    statement = compiled.Statement(build)
    item = an_item()
    compiled.defer(db, INSERT, item)

    # When it runs twice with different values
    found = statement.first(db, {"id": item["id"]})
    missing = statement.first(db, {"id": uuid.uuid4()})

    # Then it was built once, for SQLite, with a named placeholder
    assert builds == [False]
    assert ":id" in statement.sql(db)
    assert found == ("widget",)
    assert missing is None


def test_a_placeholder_with_a_field_converts_the_value_for_the_driver(db) -> None:
    # Given a UUID, which sqlite3 cannot bind as it is
    item = an_item()

    # When it is written through a placeholder that names its field
    compiled.defer(db, INSERT, item)

    # Then the field's converter turned it into what the column stores
    assert INSERT.bind(item)["id"] == item["id"].hex
    assert INSERT.bind(item)["name"] == "widget"  # no field: passed on unchanged
    assert Item.get_by_id(item["id"]).name == "widget"


def test_a_statement_that_would_embed_a_value_is_refused(db) -> None:
    # Given a statement with a literal value instead of a placeholder
    statement = compiled.Statement(lambda p: Item.select().where(Item.name == "widget"))

    # When it is compiled, then it is refused
    with pytest.raises(ValueError, match="must not embed values"):
        statement.sql(db)


def test_deferred_writes_wait_for_the_next_compiled_statement_of_the_unit(db) -> None:
    first, second = an_item("first"), an_item("second")

    with unit_of_work(db):
        # Given a write deferred in a unit of work
        compiled.defer(db, INSERT, first)

        # Then a plain peewee query does not see it yet: nothing was sent
        assert stored() == 0

        # When the unit runs its next compiled statement
        count = COUNT.first(db, {})

        # Then the deferred write went first: the unit reads its own writes
        assert count == (1,)
        assert stored() == 1

        # and a write deferred after it waits for the end of the unit
        compiled.defer(db, INSERT, second)
        assert stored() == 1

    # Then both are committed
    assert sorted(item.name for item in Item.select()) == ["first", "second"]


def test_a_rowcount_counts_the_rows_written_by_the_deferred_writes(db) -> None:
    # Given two deferred inserts of the same name
    with unit_of_work(db):
        compiled.defer(db, INSERT, an_item("old"))
        compiled.defer(db, INSERT, an_item("old"))

        # When an update of that name runs in the same unit
        changed = RENAME.rowcount(db, {"old": "old", "new": "new"})

    # Then it changed both rows the unit had deferred
    assert changed == 2
    assert [item.name for item in Item.select()] == ["new", "new"]


def test_a_unit_that_raises_sends_nothing_and_closes_its_batch(db) -> None:
    # Given a unit of work that defers a write and then fails
    with pytest.raises(Boom), unit_of_work(db):
        compiled.defer(db, INSERT, an_item())
        raise Boom

    # Then nothing was written
    assert stored() == 0

    # and its batch is closed: a write deferred now, outside any unit, runs at once
    compiled.defer(db, INSERT, an_item())
    assert stored() == 1


def test_a_unit_that_raises_after_sending_its_writes_rolls_them_back(db) -> None:
    # Given a unit whose deferred write was sent with a compiled read
    with pytest.raises(Boom), unit_of_work(db):
        compiled.defer(db, INSERT, an_item())
        assert COUNT.first(db, {}) == (1,)
        # When the unit then fails
        raise Boom

    # Then the write sent before the failure is rolled back with the rest
    assert stored() == 0


def test_a_write_deferred_outside_a_unit_of_work_runs_at_once(db) -> None:
    # Given no unit of work
    item = an_item()

    # When a write is deferred
    compiled.defer(db, INSERT, item)

    # Then it is already stored
    assert Item.get_by_id(item["id"]).name == "widget"


def test_a_nested_unit_of_work_joins_the_outer_one(db) -> None:
    with unit_of_work(db):
        compiled.defer(db, INSERT, an_item("outer"))
        # Given a nested unit that defers a write
        with unit_of_work(db):
            compiled.defer(db, INSERT, an_item("inner"))
        # Then leaving it sent nothing: its write waits in the outer unit's batch
        assert stored() == 0

    # and both are written when the outer unit ends
    assert stored() == 2


def test_an_error_in_a_nested_unit_rolls_back_the_outer_units_writes(db) -> None:
    # Given an outer unit with a write already sent, and one deferred
    with pytest.raises(Boom), unit_of_work(db):
        compiled.defer(db, INSERT, an_item("sent"))
        assert COUNT.first(db, {}) == (1,)
        compiled.defer(db, INSERT, an_item("deferred"))
        # When a nested unit fails
        with unit_of_work(db):
            compiled.defer(db, INSERT, an_item("inner"))
            raise Boom

    # Then nothing of the outer unit is written: there was no savepoint
    assert stored() == 0


def test_row_of_builds_a_clean_model_instance_with_python_values(db) -> None:
    # Given a row of a compiled SELECT, as the driver returns it
    item = an_item()
    compiled.defer(db, INSERT, item)
    row = BY_ID.first(db, {"id": item["id"]})
    assert row is not None
    assert row[0] == item["id"].hex  # SQLite stores the UUID as text

    # When a model instance is made of it
    instance = compiled.row_of(Item, row)

    # Then its fields hold python values and it has nothing to save
    assert isinstance(instance, Item)
    assert instance.id == item["id"]
    assert instance.name == "widget"
    assert instance.created_at == item["created_at"]
    assert not instance.is_dirty()


def test_a_statement_deferred_once_is_queued_once_per_unit_of_work(db) -> None:
    with unit_of_work(db):
        compiled.defer_once(db, INSERT, an_item("first"))
        compiled.defer_once(db, INSERT, an_item("second"))  # already queued: skipped
        compiled.flush(db)
        compiled.defer_once(db, INSERT, an_item("third"))  # already sent: skipped
    with unit_of_work(db):
        compiled.defer_once(db, INSERT, an_item("next unit"))

    assert sorted(item.name for item in Item.select()) == ["first", "next unit"]


def test_writes_discarded_since_a_mark_are_never_sent_and_a_once_statement_comes_back(db) -> None:
    with unit_of_work(db):
        batch = compiled.current_batch(db)
        compiled.defer(db, INSERT, an_item("kept"))
        mark = batch.mark()
        compiled.defer(db, INSERT, an_item("dropped"))
        compiled.defer_once(db, RENAME, {"old": "kept", "new": "renamed"})

        assert batch.discard_since(mark)
        compiled.defer_once(db, RENAME, {"old": "kept", "new": "renamed again"})

    assert [item.name for item in Item.select()] == ["renamed again"]


def test_writes_already_sent_since_a_mark_cannot_be_discarded(db) -> None:
    with pytest.raises(Boom), unit_of_work(db):
        batch = compiled.current_batch(db)
        mark = batch.mark()
        compiled.defer(db, INSERT, an_item("sent"))
        compiled.flush(db)
        compiled.defer(db, INSERT, an_item("queued"))

        assert not batch.discard_since(mark)
        assert len(batch.pending) == 1  # nothing dropped
        raise Boom  # only a rollback undoes them

    assert stored() == 0
