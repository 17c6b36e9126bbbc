"""RFC 9457 problem documents: every error a front answers with, and how it is rendered.

Every error leaves as an ``application/problem+json`` document; an unexpected
exception is logged with its traceback and answered with a plain 500 problem
(503 when the database is unreachable), never a stack trace.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
from opentelemetry import trace

from ops.shared.persistence.database import CONNECTION_ERRORS
from ops.shared.values.errors import DomainError, InvalidFields

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
    trace.get_current_span().record_exception(exc)  # the request's SERVER span, if traced
    raise Problem(500, "Internal server error", "an unexpected error occurred; it was logged")
