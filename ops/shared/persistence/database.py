"""Database plumbing shared by both services: open by URL, transactions, connection health.

peewee keeps one connection per thread. Workers and HTTP threads keep theirs
open between units of work and drop it only when it has broken, so a
PostgreSQL restart costs one failed unit of work (which is retried) rather
than a reconnect per message.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import peewee
from playhouse import db_url

from ops.shared.persistence import compiled
from ops.shared.values.nodes import multi_host

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 15000,
    "foreign_keys": 1,
}

# Errors that mean "the connection or server is gone", not "your SQL is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    peewee.OperationalError,
    peewee.InterfaceError,
)


def open_database(url: str, *, read_only: bool = False, **options: Any) -> peewee.Database:
    """Build (without connecting) a peewee database from a URL.

    ``sqlite:///path`` gives a WAL-mode SQLite file whose transactions take the
    write lock up front (``BEGIN IMMEDIATE``), so concurrent writers queue
    instead of failing to upgrade a read lock. ``postgresql://…`` gives a
    PostgreSQL database; query parameters are passed to libpq, and a URL with several
    hosts (``ops.shared.values.nodes.multi_host``) is handed to libpq whole. ``read_only``
    makes every PostgreSQL transaction read-only (the server refuses a write); SQLite ignores it.
    """
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            path or ":memory:",
            pragmas=SQLITE_PRAGMAS,
            lock_type="IMMEDIATE",
            check_same_thread=False,
            **options,
        )
    if url.startswith(("postgres://", "postgresql://")):
        url = url.replace("postgres://", "postgresql://", 1)
        if multi_host(url):  # libpq reads the URL itself: peewee's parser takes one host
            parts = urlsplit(url)
            given_options = dict(parse_qsl(parts.query)).get("options")
            params = {"database": parts.path.lstrip("/"), "dsn": url, **options}
            if given_options and "options" not in params:
                params["options"] = given_options
        else:
            params = {**db_url.parse(url), **options}
        if read_only:
            given = params.get("options", "")
            params["options"] = f"{given} -c default_transaction_read_only=on".strip()
        return FoldingPostgresqlDatabase(**params)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


class FoldingPostgresqlDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL whose transactions send no ``BEGIN`` or ``COMMIT`` of their own.

    peewee runs psycopg2 in autocommit mode and sends ``BEGIN`` and ``COMMIT`` as
    statements of their own, two round trips per transaction. Here ``BEGIN`` waits
    and goes in front of the transaction's first statement, and the last writes of a
    unit of work carry the ``COMMIT`` (:meth:`ops.shared.persistence.compiled.Batch.send`); a
    transaction that sent nothing costs nothing. Errors are unchanged: a failed
    statement leaves the transaction aborted and peewee's rollback ends it.
    """

    def begin(self, isolation_level: Any = None) -> None:
        if isolation_level or self._isolation_level:
            super().begin(isolation_level)
            return
        self.connection()  # connect now, as peewee's begin would: connecting resets the state
        self._state.begin_pending = True
        self._state.committed = False

    def take_begin(self) -> bytes:
        """``BEGIN;`` if this thread's transaction has not reached the server yet (it
        then has: the caller sends it in front of its statement), else nothing."""
        if getattr(self._state, "begin_pending", False):
            self._state.begin_pending = False
            if self.in_transaction():
                return b"BEGIN;"
        return b""

    def committed_by_send(self) -> None:
        """The unit's last send carried the ``COMMIT``: peewee's own is not needed."""
        self._state.committed = True

    def commit(self) -> None:
        state = self._state
        if getattr(state, "begin_pending", False):  # nothing reached the server
            state.begin_pending = False
            return
        if getattr(state, "committed", False):
            state.committed = False
            return
        super().commit()

    def rollback(self) -> None:
        state = self._state
        state.committed = False
        if getattr(state, "begin_pending", False):  # nothing reached the server
            state.begin_pending = False
            return
        super().rollback()

    def _execute_cursor(self, sql: Any, params: Any, **cursor_options: Any) -> Any:
        begin = self.take_begin()
        if begin:
            sql = (begin + sql) if isinstance(sql, bytes) else begin.decode() + sql
        return super()._execute_cursor(sql, params, **cursor_options)


def is_postgres(database: peewee.Database | peewee.DatabaseProxy) -> bool:
    """True when ``database`` (or the database behind a proxy) is PostgreSQL."""
    target = getattr(database, "obj", database)
    return isinstance(target, peewee.PostgresqlDatabase)


def ensure_usable(database: peewee.Database | peewee.DatabaseProxy) -> None:
    """Drop this thread's connection if the driver marked it broken; reconnect lazily."""
    if database.is_closed():
        return
    connection = database.connection()
    if getattr(connection, "closed", 0):
        database.close()


def discard_connection(database: peewee.Database | peewee.DatabaseProxy) -> None:
    """Close this thread's connection, ignoring errors from an already dead socket."""
    try:
        database.close()
    except Exception:
        state = getattr(getattr(database, "obj", database), "_state", None)
        if state is not None:
            state.reset()


@contextmanager
def unit_of_work(database: peewee.Database | peewee.DatabaseProxy) -> Iterator[None]:
    """One transaction; a connection error discards the connection before re-raising.

    Inside a transaction already open on this thread it simply joins it (no
    savepoint, which would cost two round trips): an error anywhere rolls back
    the whole outer unit, which is what every caller here wants. Writes
    deferred with :func:`ops.shared.persistence.compiled.defer` are sent before the commit.
    """
    if database.in_transaction():
        yield
        return
    try:
        with database.atomic():
            batch = compiled.open_batch(database)
            try:
                yield
                batch.send(commit=True)  # the deferred writes, and the commit with them
            finally:
                compiled.close_batch(database)
    except CONNECTION_ERRORS:
        discard_connection(database)
        raise


def lock_number(key: str) -> int:
    """The advisory lock number of ``key`` (a signed 64-bit hash), as :class:`KeyLocks` takes it."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_TRY_LOCK = compiled.Statement(lambda p: peewee.SQL("SELECT pg_try_advisory_xact_lock(%(key)s)"))


class KeyLocks:
    """Non-blocking, transaction-scoped locks on arbitrary string keys.

    On PostgreSQL this is ``pg_try_advisory_xact_lock`` (released at commit or
    rollback, shared by every process). On SQLite, where one process owns the
    file, an in-process set plays the same role; the caller releases it.
    """

    def __init__(self, database: peewee.Database | peewee.DatabaseProxy) -> None:
        self.database = database
        self._held: set[str] = set()
        self._mutex = threading.Lock()

    def try_acquire(self, key: str) -> bool:
        """Take the lock on ``key`` for the current transaction; False if someone holds it."""
        if is_postgres(self.database):
            row = _TRY_LOCK.first(self.database, {"key": lock_number(key)})
            return bool(row[0])
        with self._mutex:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def release(self, key: str) -> None:
        """Release an in-process lock (a no-op on PostgreSQL, where commit releases it)."""
        if not is_postgres(self.database):
            with self._mutex:
                self._held.discard(key)
