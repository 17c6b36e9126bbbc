"""Idempotency keys for POST requests, stored in the same transaction as the effect.

- The same key with the same body returns the first response again.
- The same key with a different body is refused (422).
- The same key while the first request is still running is refused (409).

A request's key is locked (non-blocking) for the duration of its transaction,
so a concurrent twin is told 409 at once instead of waiting; once the first
commits, its response is stored and every later twin gets the replay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from ops.shared.persistence import compiled
from ops.shared.persistence.database import KeyLocks, is_postgres, lock_number, unit_of_work
from ops.shared.persistence.group_commit import GroupCommitter, Job
from ops.shared.telemetry import metrics
from ops.shared.values.clock import utcnow
from ops.shared.values.errors import Conflict, Unprocessable

MAX_KEY_LENGTH = 255
_RUNNING = (
    "a request with this Idempotency-Key is still being processed; retry once it has finished"
)


class IdempotencyKeyRecord(peewee.Model):
    """Fields of one stored response; each service subclasses it bound to its database."""

    scope_key = peewee.CharField(max_length=64, primary_key=True)
    fingerprint = peewee.CharField(max_length=64)
    status = peewee.IntegerField()
    body = peewee.TextField()
    headers = peewee.TextField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(index=True)


@dataclass
class Outcome:
    """An HTTP answer as the idempotency store keeps it."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True)
class _Request:
    """A grouped request: its stored key (None without a key), fingerprint and effect."""

    scope_key: str | None
    fingerprint: str
    effect: Callable[[], Outcome]


def fingerprint(method: str, path: str, body: Any) -> str:
    """A stable hash of what a request asks for: method, path and canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class IdempotencyStore:
    """Runs effects at most once per idempotency key, within one transaction, for
    ``service`` (the label of its metrics)."""

    def __init__(
        self,
        model: type[IdempotencyKeyRecord],
        ttl_seconds: float,
        *,
        service: str,
        locks: KeyLocks | None = None,
    ) -> None:
        self.model = model
        self.database = model._meta.database
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.locks = locks or KeyLocks(self.database)
        self.service = service  # names its replay metric and group-commit thread
        self._select = compiled.Statement(
            lambda p: model.select().where(model.scope_key == p("scope_key"))
        )
        self._delete = compiled.Statement(
            lambda p: model.delete().where(model.scope_key == p("scope_key"))
        )
        # PostgreSQL only: lock every key of a group (non-blocking) and read what is stored.
        table = model._meta.table_name
        self._claim = compiled.Statement(
            lambda p: peewee.SQL(
                "SELECT u.scope_key, pg_try_advisory_xact_lock(u.lock), i.fingerprint,"  # noqa: S608
                " i.status, i.body, i.headers, i.created_at, i.expires_at"
                " FROM unnest(%(keys)s::text[], %(locks)s::bigint[]) AS u(scope_key, lock)"
                f' LEFT JOIN "{table}" AS i ON i.scope_key = u.scope_key'
            )
        )
        self._committer: GroupCommitter[_Request] = GroupCommitter(
            self.database, self._apply_group, f"{self.service}_group_commit"
        )
        self._insert = compiled.Statement(
            lambda p: model.insert(
                scope_key=p("scope_key"),
                fingerprint=p("fingerprint"),
                status=p("status"),
                body=p("body"),
                headers=p("headers"),
                created_at=p("created_at", model.created_at),
                expires_at=p("expires_at", model.expires_at),
            )
        )

    def execute(
        self,
        key: str | None,
        scope: str,
        request_fingerprint: str,
        effect: Callable[[], Outcome],
        *,
        grouped: bool = False,
    ) -> Outcome:
        """Run ``effect`` in a transaction, or replay the response stored under ``key``.

        With ``grouped`` (PostgreSQL), requests that arrive together share one
        transaction (:mod:`ops.shared.persistence.group_commit`): one statement locks and reads all
        their keys, each effect runs in turn, one commit stores them all. Each request
        keeps its own answer, its own 409, 422 or replay, and its own error; if the
        group fails as a whole, each request runs alone as without ``grouped``.
        """
        scope_key = None if key is None else self.scope_key(scope, key)
        if grouped and is_postgres(self.database):
            job = self._committer.submit(_Request(scope_key, request_fingerprint, effect))
            if not job.alone:
                if job.error is not None:
                    raise job.error
                return job.result  # type: ignore[no-any-return]
        return self._alone(scope_key, request_fingerprint, effect)

    @staticmethod
    def scope_key(scope: str, key: str) -> str:
        """The stored key of ``key`` within ``scope`` (who, method and path)."""
        return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    def _alone(
        self, scope_key: str | None, request_fingerprint: str, effect: Callable[[], Outcome]
    ) -> Outcome:
        if scope_key is None:
            with unit_of_work(self.database):
                return effect()
        try:
            with unit_of_work(self.database):
                if not self.locks.try_acquire(scope_key):
                    raise Conflict(_RUNNING)
                stored = self._stored(scope_key)
                if stored is not None:
                    return self._replay(stored, request_fingerprint)
                outcome = effect()
                self._store(scope_key, request_fingerprint, outcome)
                return outcome
        finally:
            self.locks.release(scope_key)

    def _apply_group(self, jobs: list[Job[_Request]]) -> None:
        """Settle every job of a group inside its transaction (see :meth:`execute`)."""
        keys = sorted({job.request.scope_key for job in jobs if job.request.scope_key})
        found: dict[str, tuple[Any, ...]] = {}
        if keys:
            values = {"keys": keys, "locks": [lock_number(key) for key in keys]}
            found = {row[0]: row for row in self._claim.execute(self.database, values)}
        batch = compiled.current_batch(self.database)
        assert batch is not None  # the committer runs the group in a unit of work
        taken: set[str] = set()
        for job in jobs:
            mark = batch.mark()
            try:
                job.succeed(job.context.run(self._apply_one, job.request, found, taken))
            except peewee.PeeweeException:
                raise  # the transaction may be aborted: the whole group runs alone
            except Exception as exc:  # the job's own answer (a 4xx, a 500)
                if not batch.discard_since(mark):
                    raise  # its writes already reached the database: only a rollback undoes them
                job.fail(exc)

    def _apply_one(
        self, request: _Request, found: dict[str, tuple[Any, ...]], taken: set[str]
    ) -> Outcome:
        scope_key = request.scope_key
        if scope_key is None:
            return request.effect()
        _, locked, *stored_fields = found[scope_key]
        if not locked or scope_key in taken:  # a twin in another transaction, or this group
            raise Conflict(_RUNNING)
        taken.add(scope_key)
        if stored_fields[0] is not None:
            stored = compiled.row_of(self.model, (scope_key, *stored_fields))
            if stored.expires_at >= utcnow():
                return self._replay(stored, request.fingerprint)  # type: ignore[arg-type]
            compiled.defer(self.database, self._delete, {"scope_key": scope_key})
        outcome = request.effect()
        self._store(scope_key, request.fingerprint, outcome)
        return outcome

    def _replay(self, stored: IdempotencyKeyRecord, request_fingerprint: str) -> Outcome:
        if stored.fingerprint != request_fingerprint:
            raise Unprocessable("this Idempotency-Key was used for a request with a different body")
        metrics.idempotent_replay(self.service)
        return Outcome(stored.status, json.loads(stored.body), json.loads(stored.headers), True)

    def purge_expired(self) -> int:
        """Delete stored responses whose time to live has passed; returns how many."""
        with unit_of_work(self.database):
            return self.model.delete().where(self.model.expires_at < utcnow()).execute()

    def _stored(self, scope_key: str) -> IdempotencyKeyRecord | None:
        row = self._select.first(self.database, {"scope_key": scope_key})
        stored = None if row is None else compiled.row_of(self.model, row)
        if stored is not None and stored.expires_at < utcnow():
            stored.delete_instance()
            return None
        return stored

    def _store(self, scope_key: str, request_fingerprint: str, outcome: Outcome) -> None:
        now = utcnow()
        values = {
            "scope_key": scope_key,
            "fingerprint": request_fingerprint,
            "status": outcome.status,
            "body": json.dumps(outcome.body, separators=(",", ":")),
            "headers": json.dumps(outcome.headers),
            "created_at": now,
            "expires_at": now + self.ttl,
        }
        compiled.defer(self.database, self._insert, values)


def validate_key(raw: str | None) -> str | None:
    """Check an ``Idempotency-Key`` header value; raises :class:`Unprocessable` if unusable."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not raw.isprintable() or not raw.isascii():
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return raw
