"""The HTTP kit of every front (orders, invoices, the gateway, the audit part).

:func:`create_base_app` wires problem+json errors (``ops.shared.web.problems``), Bearer
authentication, the body limit (``ops.shared.web.bodies``), connection care where there is
a database, metrics, server spans and trace ids, and the public ``/health``, ``/ready``,
``/openapi.json`` and ``/metrics`` routes. :class:`IdempotentPost` is the base of the
services' idempotent POST resources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import falcon
import peewee
from falcon.routing import CompiledRouter

from ops.shared.persistence.database import CONNECTION_ERRORS, discard_connection, ensure_usable
from ops.shared.persistence.idempotency import IdempotencyStore, Outcome, fingerprint, validate_key
from ops.shared.telemetry.tracing import untraced
from ops.shared.values.errors import DomainError
from ops.shared.web.auth import Authentication, TokenKeys, principal_of
from ops.shared.web.bodies import BodyLimit
from ops.shared.web.exposition import HttpMetrics, MetricsResource
from ops.shared.web.openapi import OpenApiDocument, load_document
from ops.shared.web.problems import (
    Problem,
    handle_domain_error,
    handle_unexpected,
    serialize_problem,
)
from ops.shared.web.spans import ServerSpans

Database = peewee.Database | peewee.DatabaseProxy


class DatabaseConnection:
    """Falcon middleware: keep this thread's connection usable; drop it when it broke."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        ensure_usable(self.database)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if resp.status == falcon.HTTP_503:
            discard_connection(self.database)


class Health:
    """``GET /health``: the process is alive and serving."""

    def __init__(self, service: str) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "service": self.service}


class NotReady(Exception):
    """Raised by a readiness check that knows why: ``/ready`` shows its message."""


class Ready:
    """``GET /ready``: each dependency answered (200); otherwise 503 with every check's
    result. A front whose dependencies are checked otherwise overrides :meth:`results`,
    and may override :attr:`detail` (``{failing}``: the names of the failing checks)."""

    detail = "a dependency is unavailable"  # the 503's detail

    def __init__(self, service: str, checks: Mapping[str, Callable[[], None]]) -> None:
        self.service = service
        self.checks = checks

    def results(self) -> dict[str, str]:
        """Each check's name and ``"ok"`` or ``"unavailable: <why>"``."""
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except NotReady as exc:
                results[name] = f"unavailable: {exc}"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        return results

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = self.results()
        if all(value == "ok" for value in results.values()):
            resp.media = {"status": "ready", "service": self.service, "checks": results}
            return
        failing = ", ".join(name for name, value in results.items() if value != "ok")
        detail = self.detail.format(failing=failing)
        raise Problem(503, "Not ready", detail, checks=results, headers={"Retry-After": "1"})


def database_check(database: Database) -> Callable[[], None]:
    """A readiness check that runs ``SELECT 1`` on this thread's connection."""

    def check() -> None:
        ensure_usable(database)
        try:
            with untraced():  # probes are frequent and tell nothing about an order
                database.execute_sql("SELECT 1").fetchone()
        except CONNECTION_ERRORS:
            discard_connection(database)
            raise

    return check


PUBLIC_PATHS = ("/health", "/ready", "/openapi.json", "/metrics")


def create_base_app(
    service: str,
    *,
    max_body_bytes: int,
    token_keys: TokenKeys,
    databases: Mapping[str, Database] = MappingProxyType({}),
    ready_checks: Mapping[str, Callable[[], None]] = MappingProxyType({}),
    ready: Ready | None = None,
    public_prefixes: Iterable[str] = (),
    middleware: Iterable[object] = (),
    openapi_package: str | None = None,
) -> falcon.App:
    """A front's Falcon app: server spans, metrics, Bearer authentication (but for
    :data:`PUBLIC_PATHS` and ``public_prefixes``), the body limit, connection care for
    each of ``databases``, then ``middleware``; problem+json errors; and the public
    ``/health``, ``/ready``, ``/openapi.json`` and ``/metrics`` routes.

    ``/ready`` is ``ready`` if given, else :class:`Ready` checking each of ``databases``
    (under its name: no database, no check), then each of ``ready_checks``.
    ``/openapi.json`` serves ``<openapi_package>/openapi.json`` (``service``'s package by
    default)."""
    router = CompiledRouter()
    app = falcon.App(
        router=router,
        middleware=[
            ServerSpans(untraced_paths=PUBLIC_PATHS),
            HttpMetrics(service, router),
            Authentication(token_keys, PUBLIC_PATHS, public_prefixes),
            BodyLimit(max_body_bytes),
            *(DatabaseConnection(database) for database in databases.values()),
            *middleware,
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(DomainError, handle_domain_error)
    app.add_route("/health", Health(service))
    checks = {name: database_check(database) for name, database in databases.items()}
    app.add_route("/ready", ready or Ready(service, {**checks, **ready_checks}))
    app.add_route("/openapi.json", OpenApiDocument(load_document(openapi_package or service)))
    app.add_route("/metrics", MetricsResource())
    return app


class IdempotentPost:
    """Base of a POST resource whose effect runs at most once per ``Idempotency-Key``
    (:class:`IdempotencyStore`): :meth:`answer` runs the effect or replays the stored
    answer (422 for the key with another body, 409 while its twin is still running)."""

    def __init__(self, idempotency: IdempotencyStore) -> None:
        self.idempotency = idempotency

    def answer(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        body: Any,
        effect: Callable[[], Outcome],
        *,
        grouped: bool = False,
    ) -> None:
        """Write ``effect``'s outcome, run under the caller's key and scope (subject,
        method, path), or the replayed one; ``grouped``: see :meth:`IdempotencyStore.execute`."""
        key = validate_key(req.get_header("Idempotency-Key"))
        scope = f"{principal_of(req).subject} {req.method} {req.path}"
        request = fingerprint(req.method, req.path, body)
        send(resp, self.idempotency.execute(key, scope, request, effect, grouped=grouped))


def send(resp: falcon.Response, outcome: Outcome) -> None:
    """Write an outcome (fresh or replayed) to a Falcon response."""
    resp.status = falcon.code_to_http_status(outcome.status)
    resp.media = outcome.body
    for name, value in outcome.headers.items():
        resp.set_header(name, value)
    if outcome.replayed:
        resp.set_header("Idempotent-Replayed", "true")
