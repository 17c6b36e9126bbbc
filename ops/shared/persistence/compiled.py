"""Hot-path SQL compiled once, and writes sent together at the end of a unit of work.

Building a peewee query and turning it into SQL costs more CPU than the
database spends running it (about 40 % of a worker's Python time, by
profile, before this module). A :class:`Statement` is written with peewee as
usual, with named placeholders (``p("order_id", Order.id)``) where values go.
It is compiled once per database dialect and cached; each call binds a dict
of values, converted by the placeholder's field (``db_value``) when one is given.

Writes whose result nobody reads (inserts of rows with client-side ids, the
outbox's ``NOTIFY``) are *deferred* with :func:`defer`: they wait in the unit
of work's :class:`Batch` and travel together with the next statement of that
unit, or at its end, before the commit. On PostgreSQL that is one round trip
for all of them (psycopg2 binds values on the client, so several statements
go as one query string and the last one's result comes back); on SQLite they
run one by one. Reads therefore always see the unit's own deferred writes.

PostgreSQL plans a prepared statement for its connection and, after five custom plans,
keeps one generic plan until a table it reads is analyzed. A plan made while a table
was nearly empty (a new database, the first seconds of a bench run) scans the table
instead of its index, and goes on scanning it as it grows: the idempotency claim of
every group commit read all 20,000 keys at the end of a bench run, 3 ms each. So each
connection discards its cached plans (``DISCARD PLANS``; the statements stay prepared)
after ``REPLAN_FIRST`` executions, then after twice as many, and so on: the plans are
re-made from the tables as they grow, ever more rarely.
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import peewee

Database = peewee.Database | peewee.DatabaseProxy

_local = threading.local()
_names = itertools.count(1)
_NAMED = re.compile(r"%\((\w+)\)s")
# A connection's cached plans are discarded after this many executions, then twice as many…
REPLAN_FIRST = 256


class _Connection:
    """What one PostgreSQL connection has prepared, and when it next discards its plans."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.executions = 0
        self.replan_at = REPLAN_FIRST


# Server-side prepared statements of each PostgreSQL connection (they live as long as it).
_prepared: weakref.WeakKeyDictionary[Any, _Connection] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()  # threads add their own connections to it
_DRIVER_ERRORS = peewee.__exception_wrapper__


def _target(database: Database) -> peewee.Database:
    return getattr(database, "obj", database)


def _postgres(database: Database) -> bool:
    return isinstance(_target(database), peewee.PostgresqlDatabase)


class Placeholder:
    """Passed to a statement's ``build``: ``p(name, field=None)`` is the placeholder of a
    value (converted by ``field.db_value`` when bound); ``p.postgres`` tells the dialect."""

    def __init__(self, postgres: bool, converters: dict[str, Callable[[Any], Any]]) -> None:
        self.postgres = postgres
        self._converters = converters

    def __call__(self, name: str, field: peewee.Field | None = None) -> peewee.Node:
        if field is not None:
            self._converters[name] = field.db_value
        return peewee.SQL(f"%({name})s" if self.postgres else f":{name}")


class Statement:
    """One SQL statement built by ``build(p)`` with :class:`Placeholder` ``p``.

    ``build`` runs once per dialect, so it must not depend on any value.
    """

    def __init__(
        self, build: Callable[[Placeholder], peewee.Node], *, prepared: bool = True
    ) -> None:
        self.build = build
        self.prepared = prepared  # False for what PostgreSQL cannot PREPARE (NOTIFY)
        self.name = f"orderflow_{next(_names)}"
        self._sql: dict[bool, str] = {}
        self._converters: dict[str, Callable[[Any], Any]] = {}
        self._prepare = ""  # PostgreSQL: PREPARE <name> AS <the SQL with $1, $2, ...>

    def sql(self, database: Database) -> str:
        """The statement's SQL for ``database``'s dialect (compiled on first use)."""
        postgres = _postgres(database)
        text = self._sql.get(postgres)
        if text is None:
            text = self._compile(_target(database), postgres)
            self._sql[postgres] = text
        return text

    def _compile(self, database: peewee.Database, postgres: bool) -> str:
        """SQLite: the statement itself. PostgreSQL: ``EXECUTE name(%(a)s, ...)`` of a
        server-side prepared statement, so the server parses and plans it once per
        connection instead of on every call."""
        query = self.build(Placeholder(postgres, self._converters))
        text, params = database.get_sql_context().sql(query).query()
        if params:
            raise ValueError(f"a compiled statement must not embed values: {params!r}")
        if not postgres or not self.prepared:
            return text
        names: list[str] = []
        for name in _NAMED.findall(text):
            if name not in names:
                names.append(name)
        numbered = _NAMED.sub(lambda match: f"${names.index(match.group(1)) + 1}", text)
        self._prepare = f"PREPARE {self.name} AS {numbered}"
        if not names:
            return f"EXECUTE {self.name}"
        return f"EXECUTE {self.name}({', '.join(f'%({name})s' for name in names)})"

    def prepare(self, database: Database) -> None:
        """Make sure this thread's PostgreSQL connection has the statement prepared (and
        discard the connection's cached plans when it is their time, see the module)."""
        if not self.prepared or not _postgres(database):
            return
        self.sql(database)
        connection = database.connection()
        state = _prepared.get(connection)
        if state is None:
            with _prepared_lock:
                state = _prepared.setdefault(connection, _Connection())
        state.executions += 1
        if state.executions >= state.replan_at:
            state.replan_at *= 2
            database.execute_sql("DISCARD PLANS")
        if self.name not in state.names:
            database.execute_sql(self._prepare)
            state.names.add(self.name)

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` converted for the driver by the placeholders' fields."""
        converters = self._converters
        return {
            name: converters[name](value) if name in converters else value
            for name, value in values.items()
        }

    def execute(self, database: Database, values: Mapping[str, Any]) -> Any:
        """Run the statement (after the unit's deferred writes); returns the cursor."""
        self.prepare(database)
        batch = current_batch(database)
        if batch is not None and batch.pending:
            return batch.send(self, values)
        return database.execute_sql(self.sql(database), self.bind(values))

    def first(self, database: Database, values: Mapping[str, Any]) -> tuple | None:
        """The first row the statement returns, or None."""
        return self.execute(database, values).fetchone()

    def rowcount(self, database: Database, values: Mapping[str, Any]) -> int:
        """How many rows the statement changed."""
        return int(self.execute(database, values).rowcount)


def row_of(model: type[peewee.Model], row: tuple) -> peewee.Model:
    """A model instance from a row of ``SELECT *``-like columns in field order."""
    fields = model._meta.sorted_fields
    instance = model(
        **{f.name: f.python_value(value) for f, value in zip(fields, row, strict=True)}
    )
    instance._dirty.clear()
    return instance


class Batch:
    """Deferred writes of one unit of work on one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.pending: list[tuple[Statement, dict[str, Any]]] = []
        self.sends = 0  # how many times deferred writes went to the database
        # Statements deferred once per unit (defer_once), with the mark they were queued at.
        self.once: dict[Statement, tuple[int, int]] = {}

    def mark(self) -> tuple[int, int]:
        """Where the unit of work stands: pass it to :meth:`discard_since`."""
        return self.sends, len(self.pending)

    def discard_since(self, mark: tuple[int, int]) -> bool:
        """Drop the writes deferred since ``mark``; False (and nothing dropped) if some
        writes were sent since, so only a rollback can undo them."""
        sends, pending = mark
        if self.sends != sends:
            return False
        del self.pending[pending:]
        self.once = {statement: at for statement, at in self.once.items() if at < mark}
        return True

    def send(
        self,
        last: Statement | None = None,
        values: Mapping[str, Any] = (),
        *,
        commit: bool = False,
    ) -> Any:
        """Send the deferred writes, then ``last`` if given, in one round trip where the
        driver allows; returns the cursor of the last statement sent. With ``commit``
        (the unit's end), a database that folds its transactions
        (``ops.shared.persistence.database.FoldingPostgresqlDatabase``) commits in the same round
        trip; without writes, nothing is sent and the commit is left to the caller."""
        pending, self.pending = self.pending, []
        if last is not None:
            pending.append((last, dict(values)))
        if not pending:
            return None
        self.sends += 1
        if not _postgres(self.database):
            cursor = None
            for statement, bound in pending:
                cursor = self.database.execute_sql(
                    statement.sql(self.database), statement.bind(bound)
                )
            return cursor
        for statement, _ in pending:
            statement.prepare(self.database)
        cursor = self.database.cursor()
        text = b";".join(
            cursor.mogrify(statement.sql(self.database), statement.bind(bound))
            for statement, bound in pending
        )
        target = _target(self.database)
        folds = hasattr(target, "take_begin")
        commits = folds and commit and last is None
        if folds:
            text = target.take_begin() + text + (b";COMMIT" if commits else b"")
        with _DRIVER_ERRORS:  # driver errors become peewee's, as in execute_sql
            cursor.execute(text)  # values are already bound: no second interpolation
        if commits:
            target.committed_by_send()
        return cursor


def current_batch(database: Database) -> Batch | None:
    """The deferred writes of this thread's unit of work on ``database``, if one is open."""
    return _batches().get(id(_target(database)))


def _batches() -> dict[int, Batch]:
    batches = getattr(_local, "batches", None)
    if batches is None:
        batches = _local.batches = {}
    return batches


def defer(database: Database, statement: Statement, values: Mapping[str, Any]) -> None:
    """Queue a write in the current unit of work, or run it now outside of one."""
    batch = current_batch(database)
    if batch is None:
        statement.execute(database, values)
    else:
        batch.pending.append((statement, dict(values)))


def defer_once(database: Database, statement: Statement, values: Mapping[str, Any]) -> None:
    """Like :func:`defer`, unless this unit of work already queued or sent ``statement``
    (a ``NOTIFY``, which PostgreSQL delivers once per transaction anyway)."""
    batch = current_batch(database)
    if batch is None:
        statement.execute(database, values)
    elif statement not in batch.once:
        batch.once[statement] = batch.mark()
        batch.pending.append((statement, dict(values)))


def flush(database: Database) -> None:
    """Send the current unit's deferred writes now: before a read that does not go
    through a :class:`Statement` (a peewee query) and must see them."""
    batch = current_batch(database)
    if batch is not None and batch.pending:
        batch.send()


def open_batch(database: Database) -> Batch:
    """Start collecting deferred writes for this thread's unit of work on ``database``."""
    batch = Batch(database)
    _batches()[id(_target(database))] = batch
    return batch


def close_batch(database: Database) -> None:
    """Stop collecting (after the batch was sent, or the unit rolled back)."""
    _batches().pop(id(_target(database)), None)
