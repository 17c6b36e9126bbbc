"""Group commit of idempotent POSTs (``ops.shared.persistence.group_commit``, ``IdempotencyStore``
with ``grouped=True``) on the real PostgreSQL: requests that arrive together share one
transaction, and each keeps its own answer, replay, 409, 422 and error."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator

import peewee
import pytest

from ops.shared.persistence import compiled
from ops.shared.persistence.database import lock_number, open_database
from ops.shared.persistence.group_commit import Job
from ops.shared.persistence.idempotency import (
    IdempotencyKeyRecord,
    IdempotencyStore,
    Outcome,
    _Request,
)
from ops.shared.values.errors import Conflict, Unprocessable

from .cluster import throwaway_database, wait_until

database = peewee.DatabaseProxy()


class Placed(peewee.Model):
    """What an effect writes: one row per request, its name unique."""

    id = peewee.UUIDField(primary_key=True)
    name = peewee.TextField(unique=True)
    txid = peewee.BigIntegerField()

    class Meta:
        database = database
        table_name = "grp_placed"


class Key(IdempotencyKeyRecord):
    class Meta:
        database = database
        table_name = "grp_idempotency_keys"


INSERT = compiled.Statement(
    lambda p: Placed.insert(
        id=p("id", Placed.id), name=p("name"), txid=peewee.SQL("txid_current()")
    )
)


class Refused(Exception):
    """A domain error raised by an effect after it deferred its write."""


@pytest.fixture(scope="module")
def database_url(servers: str) -> Iterator[str]:
    with throwaway_database("orderflow_test_group_commit") as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[IdempotencyStore]:
    postgres = open_database(database_url)
    database.initialize(postgres)
    postgres.create_tables([Placed, Key])
    Placed.delete().execute()
    Key.delete().execute()
    yield IdempotencyStore(Key, ttl_seconds=3600, service="grp")
    postgres.close()


def place(name: str, fail: bool = False) -> Callable[[], Outcome]:
    """An effect that defers one insert (stamped with its transaction id) and answers 201."""

    def effect() -> Outcome:
        compiled.defer(database, INSERT, {"id": uuid.uuid4(), "name": name})
        if fail:
            raise Refused(name)
        return Outcome(201, {"name": name})

    return effect


def job(store: IdempotencyStore, key: str | None, name: str, fail: bool = False) -> Job:
    scope_key = None if key is None else store.scope_key("alice POST /things", key)
    return Job(_Request(scope_key, f"fp-{name}", place(name, fail)))


def names() -> set[str]:
    return {row.name for row in Placed.select()}


def run(store: IdempotencyStore, key: str | None, name: str) -> Outcome:
    scope = "alice POST /things"
    return store.execute(key, scope, f"fp-{name}", place(name), grouped=True)


def test_requests_of_one_group_share_one_transaction_and_each_gets_its_answer(store) -> None:
    group = [job(store, "k1", "a"), job(store, "k2", "b"), job(store, None, "c")]

    store._committer.run_group(group)

    assert [j.result.body for j in group] == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    assert not any(j.alone or j.error for j in group)
    assert names() == {"a", "b", "c"}
    assert len({row.txid for row in Placed.select()}) == 1
    assert {row.fingerprint for row in Key.select()} == {"fp-a", "fp-b"}


def test_a_twin_key_in_the_same_group_is_409_and_then_replays(store) -> None:
    first, twin = job(store, "same", "a"), job(store, "same", "a")

    store._committer.run_group([first, twin])

    assert first.result.status == 201
    assert isinstance(twin.error, Conflict)
    replay = run(store, "same", "a")
    assert (replay.status, replay.replayed) == (201, True)
    assert names() == {"a"}


def test_a_stored_key_with_another_body_is_422_and_the_rest_commits(store) -> None:
    run(store, "k", "a")
    other_body, fresh = job(store, "k", "changed"), job(store, "k2", "b")

    store._committer.run_group([other_body, fresh])

    assert isinstance(other_body.error, Unprocessable)
    assert fresh.result.status == 201
    assert names() == {"a", "b"}


def test_a_failing_request_loses_only_its_own_writes(store) -> None:
    group = [job(store, "k1", "a"), job(store, "k2", "bad", fail=True), job(store, "k3", "c")]

    store._committer.run_group(group)

    assert isinstance(group[1].error, Refused)
    assert names() == {"a", "c"}
    assert Key.get_or_none(Key.fingerprint == "fp-bad") is None


def test_a_key_locked_by_another_transaction_is_409(store, database_url) -> None:
    other = open_database(database_url)
    scope_key = store.scope_key("alice POST /things", "busy")
    with other.atomic():
        other.execute_sql("SELECT pg_advisory_xact_lock(%s)", (lock_number(scope_key),))
        busy, free = job(store, "busy", "a"), job(store, "free", "b")
        store._committer.run_group([busy, free])
    other.close()

    assert isinstance(busy.error, Conflict)
    assert free.result.status == 201
    assert names() == {"b"}


def test_an_expired_stored_key_runs_the_effect_again(store) -> None:
    run(store, "old", "a")
    Key.update(expires_at=dt.datetime(2000, 1, 1)).execute()
    Placed.delete().execute()

    again = run(store, "old", "a2")

    assert (again.status, again.replayed) == (201, False)
    assert names() == {"a2"}
    assert Key.get().fingerprint == "fp-a2"


def test_a_group_that_fails_as_a_whole_is_rolled_back_and_each_request_runs_alone(store) -> None:
    run(store, None, "taken")
    group = [job(store, "k1", "a"), job(store, "k2", "taken"), job(store, "k3", "c")]

    store._committer.run_group(group)  # the duplicate name fails at the group's commit

    assert all(j.alone for j in group)
    assert names() == {"taken"}
    # alone, each gets its own answer: two commit, the duplicate fails by itself
    assert run(store, "k1", "a").status == 201
    with pytest.raises(peewee.IntegrityError):
        run(store, "k2", "taken")
    assert run(store, "k3", "c").status == 201
    assert names() == {"taken", "a", "c"}


def test_requests_waiting_while_a_group_commits_form_the_next_group(store) -> None:
    gate, entered = threading.Event(), threading.Event()

    def slow() -> Outcome:
        entered.set()
        gate.wait(10)
        return place("first")()

    results: list[Outcome] = []
    scope = "alice POST /things"
    threads = [
        threading.Thread(
            target=lambda: results.append(store.execute(None, scope, "fp", slow, grouped=True))
        )
    ]
    threads[0].start()
    assert entered.wait(10)
    for index in range(12):
        thread = threading.Thread(
            target=lambda i=index: results.append(run(store, f"k{i}", f"n{i}"))
        )
        thread.start()
        threads.append(thread)
    wait_until(lambda: store._committer._queue.qsize() == 12, 10, "twelve requests queued")
    gate.set()
    for thread in threads:
        thread.join(10)

    assert len(results) == 13 and all(outcome.status == 201 for outcome in results)
    assert len(names()) == 13
    assert len({row.txid for row in Placed.select()}) == 2  # the slow one, then the rest


def test_without_postgres_grouped_requests_run_alone(tmp_path) -> None:
    sqlite = open_database(f"sqlite:///{tmp_path}/alone.db")
    database.initialize(sqlite)
    sqlite.create_tables([Key])
    store = IdempotencyStore(Key, ttl_seconds=60, service="grp")

    outcome = store.execute("k", "s", "fp", lambda: Outcome(201, {"ok": True}), grouped=True)

    assert outcome.status == 201 and store._committer._thread is None
    sqlite.close()
