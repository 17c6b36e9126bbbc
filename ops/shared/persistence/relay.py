"""The outbox relay: publishes a service's outbox rows to the broker, then marks them.

One loop per service database. Each pass locks a batch of unpublished rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several relays never publish
the same row at once), publishes each with publisher confirms, and marks
published only the rows the broker confirmed, in the same transaction. A
crash between confirm and commit republishes those rows: a duplicate that
consumers' dedupe keys absorb, never a loss.

On PostgreSQL the relay sleeps on ``LISTEN`` and is woken by the ``NOTIFY``
that :func:`ops.shared.persistence.outbox.record` sends at commit; elsewhere it polls.
Periodic chores (the saga deadline, the gauges, purging idempotency keys) run on a
thread of their own beside the loop, with their own connection, so a slow one (the
gauges count every order by status) never holds up publishing.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import peewee

from ops.shared.persistence import compiled
from ops.shared.persistence.database import (
    CONNECTION_ERRORS,
    discard_connection,
    ensure_usable,
    is_postgres,
    unit_of_work,
)
from ops.shared.persistence.outbox import OutboxRecord, channel
from ops.shared.telemetry.tracing import untraced
from ops.shared.values.clock import utcnow

log = logging.getLogger(__name__)

# Publishes a batch of rows in order; returns the seqs of the rows the broker confirmed.
BatchPublisher = Callable[[list[OutboxRecord]], list[int]]


class PublishIncomplete(Exception):
    """A publish stopped part-way: ``confirmed`` holds what the broker confirmed before
    (a batch publisher's row seqs, in order; a pipeline's message ids), ``cause`` why."""

    def __init__(self, confirmed: Collection[Any], cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.confirmed = confirmed
        self.cause = cause


@dataclass
class Chore:
    """A function the relay runs every ``interval`` seconds."""

    name: str
    interval: float
    run: Callable[[], object]
    due: float = 0.0


class Relay:
    """Moves outbox rows of one database to the broker."""

    def __init__(
        self,
        name: str,
        model: type[OutboxRecord],
        *,
        publish_batch: BatchPublisher,
        batch: int = 100,
        poll_interval: float = 1.0,
        chores: list[Chore] | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.database = model._meta.database
        self.publish_batch = publish_batch
        self.batch = batch
        self.poll_interval = poll_interval
        self.chores = chores or []
        self.idle = idle or (lambda: None)
        self._listener: object | None = None
        self._failures = 0
        self._statements()

    def run_once(self) -> int:
        """Publish one batch; returns how many rows were published and marked.

        The polling SQL is not traced (a trace per poll would drown the real ones);
        each publish runs in the trace of the request that wrote the row.
        """
        with untraced():
            return self._run_once()

    def _run_once(self) -> int:
        ensure_usable(self.database)
        failure: BaseException | None = None
        with unit_of_work(self.database):
            rows = self._pending()
            try:
                published = self.publish_batch(rows) if rows else []
            except PublishIncomplete as exc:
                published, failure = list(exc.confirmed), exc.cause
                stuck = next((row for row in rows if row.seq not in set(published)), None)
                if stuck is not None:
                    self.model.update(publish_attempts=self.model.publish_attempts + 1).where(
                        self.model.seq == stuck.seq
                    ).execute()
            # Mark what the broker confirmed, even when a later publish failed.
            if published:
                self._mark(published)
        if failure is not None:
            raise failure
        return len(published)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; failures back off and never end the loop. The
        chores run meanwhile on a thread of their own (:meth:`run_chores`)."""
        log.info("relay %s started", self.name)
        chores = None
        if self.chores:
            chores = threading.Thread(
                target=self.run_chores, args=(stop,), name=f"{self.name}-chores", daemon=True
            )
            chores.start()
        while not stop.is_set():
            try:
                count = self.run_once()
                self._failures = 0
            except Exception as exc:
                self._failures += 1
                delay = min(0.1 * 2 ** min(self._failures, 6), 5.0)
                log.warning(
                    "relay %s: %s: %s; retrying in %.1fs", self.name, type(exc).__name__, exc, delay
                )
                if isinstance(exc, CONNECTION_ERRORS):
                    discard_connection(self.database)
                    self._close_listener()
                stop.wait(delay)
                continue
            if count < self.batch:
                self._wait(stop)
        self._close_listener()
        if chores is not None:
            chores.join()
        log.info("relay %s stopped", self.name)

    def run_chores(self, stop: threading.Event) -> None:
        """Run each chore when it is due, until ``stop`` is set (every chore runs once at
        the start). A chore that fails is logged and runs again at its next turn; a
        connection error also drops this thread's connection."""
        while True:
            for chore in self.chores:
                if time.monotonic() < chore.due:
                    continue
                chore.due = time.monotonic() + chore.interval
                try:
                    ensure_usable(self.database)
                    with untraced():
                        chore.run()
                except Exception as exc:
                    log.warning(
                        "relay %s: chore %s: %s: %s", self.name, chore.name, type(exc).__name__, exc
                    )
                    if isinstance(exc, CONNECTION_ERRORS):
                        discard_connection(self.database)
            next_due = min(chore.due for chore in self.chores) - time.monotonic()
            if stop.wait(max(next_due, 0.01)):
                break
        discard_connection(self.database)

    def _pending(self) -> list[OutboxRecord]:
        model = self.model
        return [compiled.row_of(model, row) for row in self._select.execute(self.database, {})]

    def _statements(self) -> None:
        """Compile the pending-rows query once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
        so several relays never publish the same row at once)."""
        model, batch = self.model, self.batch

        def pending(p: compiled.Placeholder) -> peewee.Node:
            query = model.select().where(model.published_at.is_null()).order_by(model.seq)
            query = query.limit(peewee.SQL(str(batch)))
            return query.for_update(skip_locked=True) if p.postgres else query

        self._select = compiled.Statement(pending)
        # PostgreSQL takes the list of seqs as one array parameter, so the statement is
        # compiled (and prepared) once; SQLite builds its IN list each time.
        self._mark_all = compiled.Statement(
            lambda p: model.update(published_at=p("now", model.published_at)).where(
                model.seq == peewee.fn.ANY(p("seqs"))
            )
        )

    def _mark(self, seqs: list[int]) -> None:
        """Stamp ``published_at`` on the rows ``seqs``."""
        if is_postgres(self.database):  # deferred: it travels with the commit
            compiled.defer(self.database, self._mark_all, {"now": utcnow(), "seqs": seqs})
        else:
            self.model.update(published_at=utcnow()).where(self.model.seq.in_(seqs)).execute()

    def _wait(self, stop: threading.Event) -> None:
        """Sleep until a NOTIFY arrives, the poll interval passes, or ``stop`` is set."""
        self.idle()
        timeout = self.poll_interval
        listener = self._listen()
        if listener is None:
            stop.wait(timeout)
            return
        readable, _, _ = select.select([listener], [], [], timeout)
        if readable:
            listener.poll()  # type: ignore[attr-defined]
            listener.notifies.clear()  # type: ignore[attr-defined]

    def _listen(self) -> object | None:
        if not is_postgres(self.database):
            return None
        if self._listener is None:
            connection = (
                self.database.obj._connect()
                if hasattr(self.database, "obj")
                else self.database._connect()
            )
            connection.autocommit = True
            connection.cursor().execute(f"LISTEN {channel(self.model)}")
            self._listener = connection
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # it may already be broken
                self._listener.close()  # type: ignore[attr-defined]
            self._listener = None
