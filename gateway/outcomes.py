"""What a service's outcome means for the gateway's answer.

A required service (orders) gives a body or raises :class:`UpstreamProblem`: its
4xx passed on unchanged (404 stays 404, 401 stays 401), its failure as 503. An
optional service (invoices) gives items or a ``partial_failures`` marker.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from gateway.clients import Failure, Outcome, Reply
from ops.shared.web.problems import PROBLEM_BASE

log = logging.getLogger(__name__)


class UpstreamProblem(Exception):
    """A request the gateway cannot answer: a service's 4xx, passed on, or a required
    service's failure (503). ``document`` is the RFC 9457 problem to show."""

    def __init__(self, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(document.get("detail") or document.get("title"))
        self.document = document
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return int(self.document["status"])

    @classmethod
    def refused(cls, reply: Reply) -> UpstreamProblem:
        """The service's own 4xx problem, with its status whatever the body says."""
        body = reply.body if isinstance(reply.body, dict) else {}
        document = {"type": "about:blank", "title": f"HTTP {reply.status}", **body}
        document["status"] = reply.status
        return cls(document)

    @classmethod
    def failed(cls, failure: Failure, *, effect: bool = False) -> UpstreamProblem:
        """503 for a required service that failed; ``effect`` adds that a change may
        have happened (a timed-out POST), to be retried with the same Idempotency-Key."""
        detail = f"the {failure.service} service failed ({failure.reason}): {failure.detail}"
        if effect and failure.reason != "unavailable":
            detail += "; the change may have been applied: retry with the same Idempotency-Key"
        document = {
            "type": PROBLEM_BASE + "upstream-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": detail,
            "service": failure.service,
            "reason": failure.reason,
        }
        return cls(document, {"Retry-After": "1"})

    @classmethod
    def not_found(cls, what: str) -> UpstreamProblem:
        document = {"type": PROBLEM_BASE + "not-found", "title": "Not found", "status": 404}
        return cls({**document, "detail": f"{what} does not exist"})


def required(outcome: Outcome, *, effect: bool = False) -> Any:
    """The body of a 2xx answer from a required service; raises :class:`UpstreamProblem`."""
    if isinstance(outcome, Failure):
        raise UpstreamProblem.failed(outcome, effect=effect)
    if not outcome.ok:
        raise UpstreamProblem.refused(outcome)
    if not isinstance(outcome.body, dict):
        failure = Failure(outcome.service, "error", "answered with a body that is not an object")
        raise UpstreamProblem.failed(failure, effect=effect)
    return outcome.body


def required_items(outcome: Outcome) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The ``items`` of a required service's list answer, and the whole answer."""
    body = required(outcome)
    items = _items(body)
    if items is None:
        failure = Failure(outcome.service, "error", "answered a list without valid items")
        raise UpstreamProblem.failed(failure)
    return items, body


def optional_items(outcome: Outcome) -> tuple[list[dict[str, Any]] | None, list[dict[str, str]]]:
    """The ``items`` of an optional service's list answer, or ``None`` and the failure marker.

    Any 4xx here (say, a token the invoices service refuses) is a failure too: the
    optional part is missing, the rest of the answer stands.
    """
    if isinstance(outcome, Reply):
        items = _items(outcome.body) if outcome.ok else None
        if items is not None:
            return items, []
        detail = f"answered {outcome.status}{_title(outcome)}"
        if outcome.ok:
            detail = "answered a list without valid items"
        outcome = Failure(outcome.service, "error", detail)
    log.warning("partial answer: %s %s: %s", outcome.service, outcome.reason, outcome.detail)
    return None, [outcome.as_marker()]


def _items(body: Any) -> list[dict[str, Any]] | None:
    """``body["items"]`` if it is a list of objects, else ``None``."""
    items = body.get("items") if isinstance(body, dict) else None
    if isinstance(items, list) and all(isinstance(item, dict) for item in items):
        return items
    return None


def _title(reply: Reply) -> str:
    body = reply.body
    return f": {body['title']}" if isinstance(body, dict) and "title" in body else ""


def canonical_id(value: str, what: str) -> str:
    """``value`` as a canonical UUID string; anything else is an unknown ``what`` (404)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise UpstreamProblem.not_found(f"{what} {value}") from None
