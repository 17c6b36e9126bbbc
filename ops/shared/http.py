"""HTTP plumbing both Falcon fronts share: problem+json, strict JSON bodies, limits, health.

Every error leaves as an RFC 9457 ``application/problem+json`` document; an
unexpected exception is logged with its traceback and answered with a plain
500 problem, never a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import falcon
import peewee
from falcon.routing import CompiledRouter

from ops.shared.auth import Authentication, TokenKeys
from ops.shared.database import CONNECTION_ERRORS, discard_connection, ensure_usable
from ops.shared.errors import DomainError, InvalidFields
from ops.shared.exposition import HttpMetrics, MetricsResource
from ops.shared.openapi import OpenApiDocument, load_document
from ops.shared.tracing import TraceHeader, untraced

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:orderflow:problem:"


class Problem(falcon.HTTPError):
    """An HTTP error rendered as an RFC 9457 problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(
            falcon.code_to_http_status(status), title=title, description=detail, headers=headers
        )
        self.kind = kind or title.lower().replace(" ", "-")
        self.extensions = extensions

    def to_dict(self, obj_type: type = dict) -> dict[str, Any]:  # type: ignore[override]
        document: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status_code,
        }
        if self.description:
            document["detail"] = self.description
        document.update(self.extensions)
        return document


def serialize_problem(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon error serializer: every HTTPError becomes problem+json."""
    if isinstance(exc, Problem):
        document = exc.to_dict()
    else:
        document = {
            "type": "about:blank",
            "title": exc.title.split(" ", 1)[-1] if exc.title[:3].isdigit() else exc.title,
            "status": exc.status_code,
        }
        if exc.description:
            document["detail"] = exc.description
    resp.content_type = PROBLEM_JSON
    resp.data = json.dumps(document).encode()
    resp.append_header("Vary", "Accept")


def handle_domain_error(
    req: falcon.Request, resp: falcon.Response, exc: DomainError, params: dict[str, Any]
) -> None:
    """Turn a service's :class:`DomainError` into the matching problem."""
    extensions: dict[str, Any] = {}
    if isinstance(exc, InvalidFields):
        extensions["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    headers = {"WWW-Authenticate": 'Bearer realm="orderflow"'} if exc.status == 401 else None
    raise Problem(exc.status, exc.title, exc.detail, headers=headers, **extensions)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
) -> None:
    """Log an unexpected exception and answer 500 (or 503 if the database is down)."""
    if isinstance(exc, falcon.HTTPError):
        raise exc
    if isinstance(exc, CONNECTION_ERRORS):
        log.warning("database unavailable during %s %s: %s", req.method, req.path, exc)
        raise Problem(
            503,
            "Service unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": "1"},
        )
    log.exception("unhandled error during %s %s", req.method, req.path)
    raise Problem(500, "Internal server error", "an unexpected error occurred; it was logged")


class BodyLimit:
    """Falcon middleware: refuse bodies over ``max_bytes`` with 413 before reading them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is not None and length > self.max_bytes:
            raise Problem(
                413, "Content too large", f"the request body is limited to {self.max_bytes} bytes"
            )


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


class _NonFinite:
    """Marker for the JSON literals NaN and Infinity, so validation can name the field."""

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __str__(self) -> str:
        return self.literal


def read_json(req: falcon.Request, max_bytes: int) -> dict[str, Any]:
    """Read and parse a JSON object body strictly.

    Wrong Content-Type is 415, a body over ``max_bytes`` 413, malformed JSON
    400, and a JSON value that is not an object 422. JSON numbers arrive as
    :class:`~decimal.Decimal` (never float) and ``NaN``/``Infinity`` as a
    marker that field validation rejects by name.
    """
    if req.content_type is None or req.content_type.split(";")[0].strip() != "application/json":
        raise Problem(415, "Unsupported media type", "send the body as application/json")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, "Content too large", f"the request body is limited to {max_bytes} bytes")
    try:
        body = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_NonFinite)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Problem(
            422,
            "Invalid fields",
            "the body must be a JSON object",
            kind="invalid-fields",
            errors=[{"field": "", "message": "must be an object"}],
        )
    return body


def read_optional_json(req: falcon.Request, max_bytes: int) -> dict[str, Any]:
    """Like :func:`read_json`, but an empty body (whatever its Content-Type) is ``{}``."""
    if not req.content_length:
        return {}
    return read_json(req, max_bytes)


class Health:
    """``GET /health``: the process is alive and serving."""

    def __init__(self, service: str) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "service": self.service}


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
) -> falcon.App:
    """A Falcon app with problem+json errors, Bearer authentication, body limit,
    connection care and health routes (public, like ``/openapi.json`` and ``/metrics``)."""
    router = CompiledRouter()
    app = falcon.App(
        router=router,
        middleware=[
            HttpMetrics(service, router),
            TraceHeader(),
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
    app.add_route("/ready", Ready(service, {"database": database_check(database), **ready_checks}))
    app.add_route("/openapi.json", OpenApiDocument(load_document(service)))
    app.add_route("/metrics", MetricsResource())
    return app
