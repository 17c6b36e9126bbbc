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

import falcon
import peewee

from ops.shared import compiled, metrics
from ops.shared.clock import utcnow
from ops.shared.database import KeyLocks, unit_of_work
from ops.shared.errors import Conflict, Unprocessable

MAX_KEY_LENGTH = 255


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


def fingerprint(method: str, path: str, body: Any) -> str:
    """A stable hash of what a request asks for: method, path and canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class IdempotencyStore:
    """Runs effects at most once per idempotency key, within one transaction."""

    def __init__(
        self,
        model: type[IdempotencyKeyRecord],
        ttl_seconds: float,
        locks: KeyLocks | None = None,
    ) -> None:
        self.model = model
        self.database = model._meta.database
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.locks = locks or KeyLocks(self.database)
        self.service = model._meta.table_name.split("_", 1)[0]  # tables are <service>_…
        self._select = compiled.Statement(
            lambda p: model.select().where(model.scope_key == p("scope_key"))
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
    ) -> Outcome:
        """Run ``effect`` in a transaction, or replay the response stored under ``key``."""
        if key is None:
            with unit_of_work(self.database):
                return effect()
        scope_key = hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()
        try:
            with unit_of_work(self.database):
                if not self.locks.try_acquire(scope_key):
                    raise Conflict(
                        "a request with this Idempotency-Key is still being processed; "
                        "retry once it has finished"
                    )
                stored = self._stored(scope_key)
                if stored is not None:
                    if stored.fingerprint != request_fingerprint:
                        raise Unprocessable(
                            "this Idempotency-Key was used for a request with a different body"
                        )
                    metrics.idempotent_replay(self.service)
                    return Outcome(
                        stored.status, json.loads(stored.body), json.loads(stored.headers), True
                    )
                outcome = effect()
                self._store(scope_key, request_fingerprint, outcome)
                return outcome
        finally:
            self.locks.release(scope_key)

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


def send(resp: falcon.Response, outcome: Outcome) -> None:
    """Write an outcome (fresh or replayed) to a Falcon response."""
    resp.status = falcon.code_to_http_status(outcome.status)
    resp.media = outcome.body
    for name, value in outcome.headers.items():
        resp.set_header(name, value)
    if outcome.replayed:
        resp.set_header("Idempotent-Replayed", "true")
