"""The base Falcon app both services share, with its middleware and health routes.

:func:`create_base_app` wires problem+json errors (``ops.shared.problems``), Bearer
authentication, the body limit (``ops.shared.bodies``), connection care, metrics,
server spans and trace ids, and the public ``/health``, ``/ready``, ``/openapi.json`` and
``/metrics`` routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import falcon
import peewee
from falcon.routing import CompiledRouter

from ops.shared.auth import Authentication, TokenKeys
from ops.shared.bodies import BodyLimit
from ops.shared.database import CONNECTION_ERRORS, discard_connection, ensure_usable
from ops.shared.errors import DomainError
from ops.shared.exposition import HttpMetrics, MetricsResource
from ops.shared.openapi import OpenApiDocument, load_document
from ops.shared.problems import Problem, handle_domain_error, handle_unexpected, serialize_problem
from ops.shared.tracing import ServerSpans, untraced


class DatabaseConnection:
    """Falcon middleware: keep this thread's connection usable; drop it when it broke."""

    def __init__(self, database: peewee.Database | peewee.DatabaseProxy) -> None:
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
    """``GET /ready``: each dependency answered; otherwise 503 naming the ones that did not."""

    def __init__(self, service: str, checks: dict[str, Callable[[], None]]) -> None:
        self.service = service
        self.checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except NotReady as exc:
                results[name] = f"unavailable: {exc}"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        if all(value == "ok" for value in results.values()):
            resp.media = {"status": "ready", "service": self.service, "checks": results}
            return
        raise Problem(
            503,
            "Not ready",
            "a dependency is unavailable",
            checks=results,
            headers={"Retry-After": "1"},
        )


def database_check(database: peewee.Database | peewee.DatabaseProxy) -> Callable[[], None]:
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
    database: peewee.Database | peewee.DatabaseProxy,
    max_body_bytes: int,
    ready_checks: dict[str, Callable[[], None]],
    token_keys: TokenKeys,
    middleware: Iterable[object] = (),
    openapi_package: str | None = None,
    database_check_name: str = "database",
) -> falcon.App:
    """A Falcon app with problem+json errors, Bearer authentication, body limit,
    connection care and health routes (public, like ``/openapi.json`` and ``/metrics``).

    ``/openapi.json`` serves ``<openapi_package>/openapi.json`` (the service's package by
    default); ``/ready`` checks ``database`` under ``database_check_name``, then each of
    ``ready_checks``."""
    router = CompiledRouter()
    app = falcon.App(
        router=router,
        middleware=[
            ServerSpans(untraced_paths=PUBLIC_PATHS),
            HttpMetrics(service, router),
            Authentication(token_keys, PUBLIC_PATHS),
            BodyLimit(max_body_bytes),
            DatabaseConnection(database),
            *middleware,
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(DomainError, handle_domain_error)
    app.add_route("/health", Health(service))
    checks = {database_check_name: database_check(database), **ready_checks}
    app.add_route("/ready", Ready(service, checks))
    app.add_route("/openapi.json", OpenApiDocument(load_document(openapi_package or service)))
    app.add_route("/metrics", MetricsResource())
    return app
