"""Request bodies: a size limit before reading, and strict JSON (Decimal, never float).

Falcon sets no body limit of its own (waitress allows 1 GiB), and its default JSON
handler accepts ``NaN``/``Infinity`` and parses numbers as floats; these do neither.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import falcon

from ops.shared.problems import Problem


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
