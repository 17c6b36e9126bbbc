"""Schemathesis extension hooks for the fuzz runs (loaded through ``SCHEMATHESIS_HOOKS``).

- ``problem_json_errors``: a check that every 4xx and 5xx answer is an RFC 9457
  ``application/problem+json`` document with ``type``, ``title`` and the same ``status``.
  One documented exception: ``POST /graphql`` refuses a GraphQL request it cannot run
  with 400 and a GraphQL response (``{"errors": [...]}``, GraphQL over HTTP), which
  GraphQL clients expect; anything else it refuses is problem+json like everywhere.
- an ``after_call`` hook that appends one JSON line per request actually sent
  (operation, status, phase) to the file named by ``FUZZ_TALLY``, so the test can
  count the requests per operation (shrinking and replays included).

Schemathesis runs this file in its own process; it imports nothing from orderflow.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import schemathesis

PROBLEM_JSON = "application/problem+json"
GRAPHQL = "POST /graphql"
TALLY_ENV = "FUZZ_TALLY"
_lock = threading.Lock()


def problem_of(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with an error answer as a problem document, or None if nothing."""
    if content_type.split(";", maxsplit=1)[0].strip().lower() != PROBLEM_JSON:
        return f"{status} answered with Content-Type {content_type!r}, not {PROBLEM_JSON}"
    try:
        document: Any = json.loads(body)
    except ValueError:
        return f"{status} problem body is not JSON: {body[:200]!r}"
    if not isinstance(document, dict):
        return f"{status} problem body is not an object: {body[:200]!r}"
    missing = [name for name in ("type", "title") if not isinstance(document.get(name), str)]
    if missing:
        return f"{status} problem lacks string {', '.join(missing)}: {document}"
    if document.get("status") != status:
        return f"{status} problem says status {document.get('status')!r}"
    return None


def graphql_request_error(status: int, content_type: str, body: bytes) -> bool:
    """A 400 GraphQL response without ``data``: the request was refused before it ran."""
    if (
        status != 400
        or content_type.split(";", maxsplit=1)[0].strip().lower() != "application/json"
    ):
        return False
    try:
        document: Any = json.loads(body)
    except ValueError:
        return False
    errors = document.get("errors") if isinstance(document, dict) else None
    return (
        isinstance(errors, list)
        and bool(errors)
        and "data" not in document
        and all(
            isinstance(error, dict) and isinstance(error.get("message"), str) for error in errors
        )
    )


@schemathesis.check
def problem_json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer (4xx, 5xx) is problem+json with type, title and its status."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if case.operation.label == GRAPHQL and graphql_request_error(
        response.status_code, content_type, response.content
    ):
        return True
    failure = problem_of(response.status_code, content_type, response.content)
    if failure is not None:
        raise AssertionError(failure)
    return True


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Record the request just sent: operation, status code and phase."""
    path = os.environ.get(TALLY_ENV)
    if not path:
        return
    phase = case.meta.phase.name.value if case.meta is not None else "explicit"
    line = json.dumps(
        {"operation": case.operation.label, "status": response.status_code, "phase": phase}
    )
    with _lock, open(path, "a", encoding="utf-8") as tally:
        tally.write(line + "\n")
