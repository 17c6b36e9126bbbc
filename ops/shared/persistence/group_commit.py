"""Group commit: requests that arrive together share one transaction and one commit.

A front's request threads hand their work to a :class:`GroupCommitter` and wait. Its
one thread takes what is waiting (at most ``max_group``, no timer: a lone request
goes alone at once), runs it in a single unit of work through the ``apply`` function
it was given, and commits once; each request still gets its own answer.

``apply`` settles each job (:meth:`Job.succeed`, :meth:`Job.fail`) and undoes a
failed job's deferred writes itself (:mod:`ops.shared.persistence.compiled`). If it raises, or
the commit fails, the group is rolled back and every job is handed back to its own
thread to run alone (:attr:`Job.alone`), as it would have without grouping: a row
that fails takes nobody else with it, and no answer is sent before its commit.

Each job runs in a copy of its request's context (``contextvars``), so its spans,
trace context and logs are the request's own; the statements the group shares (its
begin, reads, writes and commit) run in the first request's context, so with SQL
tracing on they appear in that request's trace.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import peewee

from ops.shared.persistence.database import unit_of_work

log = logging.getLogger("orderflow.group_commit")

T = TypeVar("T")
MAX_GROUP = 64


@dataclass(eq=False)
class Job(Generic[T]):
    """One request's work, waiting for its group."""

    request: T
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    result: Any = None
    error: BaseException | None = None
    alone: bool = False  # the group failed: run this one by itself in the caller's thread
    settled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def succeed(self, result: Any) -> None:
        self.result, self.error, self.settled = result, None, True

    def fail(self, error: BaseException) -> None:
        self.result, self.error, self.settled = None, error, True


Apply = Callable[[list[Job[T]]], None]


class GroupCommitter(Generic[T]):
    """Runs submitted jobs in shared transactions on ``database``, one group at a time."""

    def __init__(
        self,
        database: peewee.Database | peewee.DatabaseProxy,
        apply: Apply[T],
        name: str,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.database = database
        self.apply = apply
        self.name = name
        self.max_group = max_group
        self._queue: queue.SimpleQueue[Job[T]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, request: T) -> Job[T]:
        """Queue ``request`` and wait until its group is committed (or rolled back).

        Returns the settled job: ``result`` or ``error`` after a commit, or ``alone``
        set when the caller must run the request by itself.
        """
        job: Job[T] = Job(request)
        self._ensure_thread()
        self._queue.put(job)
        job.done.wait()
        return job

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                thread.start()
                self._thread = thread

    def _loop(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.run_group(group)

    def run_group(self, group: list[Job[T]]) -> None:
        """Apply ``group`` in one transaction and release its callers (never raises)."""
        try:
            # The group's own statements (begin, reads, the writes, commit) run in a copy of
            # its first request's context: with SQL tracing on, they are traced there.
            group[0].context.copy().run(self._transaction, group)
            log.info("%s batch_size=%d", self.name, len(group))  # as batch actors log theirs
        except Exception:
            log.warning(
                "%s: a group of %d failed as a whole; each runs alone",
                self.name,
                len(group),
                exc_info=True,
            )
            for job in group:
                job.alone = True
        except BaseException:
            for job in group:
                job.alone = True
            raise
        finally:
            for job in group:
                job.done.set()

    def _transaction(self, group: list[Job[T]]) -> None:
        with unit_of_work(self.database):
            self.apply(group)
            unsettled = [job for job in group if not job.settled]
            if unsettled:
                raise RuntimeError(f"{len(unsettled)} jobs of the group were not settled")
