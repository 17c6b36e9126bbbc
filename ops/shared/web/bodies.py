"""Request bodies: a size limit before reading, and strict JSON (Decimal, never float).

Falcon sets no body limit of its own (waitress allows 1 GiB), and its default JSON
handler accepts ``NaN``/``Infinity`` and parses numbers as floats; these do neither.
They also refuse what a JSON decoder may take in silence or choke on: a key given twice
in one object (parsers disagree on which value wins), and arrays and objects nested
more than ``MAX_DEPTH`` levels deep (Python's decoder recurses, and fails with a
``RecursionError`` at about a thousand).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import falcon

from ops.shared.web.problems import Problem

MAX_DEPTH = 64  # levels of arrays and objects in a request body; ours need three
_TOO_DEEP = object()


class _DuplicateKey(ValueError):
    """A JSON object gave the same key twice."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object from its pairs, refusing a key given twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return result


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels deep."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BodyLimit:
    """Falcon middleware: refuse bodies over ``max_bytes`` with 413 before reading them,
    and keep the limit in ``req.context.max_body_bytes`` for :func:`read_json`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.max_body_bytes = self.max_bytes
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


def read_json(req: falcon.Request) -> dict[str, Any]:
    """Read and parse a JSON object body strictly.

    Wrong Content-Type is 415, a body over the app's limit (:class:`BodyLimit`; a chunked
    body has no length to check beforehand) 413, malformed JSON
    (invalid UTF-8, a key twice in one object, an integer of more digits than Python
    converts, nesting deeper than ``MAX_DEPTH``) 400, and a JSON value that is not an
    object 422. JSON numbers arrive as :class:`~decimal.Decimal` (never float) and
    ``NaN``/``Infinity`` as a marker that field validation rejects by name.
    """
    if req.content_type is None or req.content_type.split(";")[0].strip() != "application/json":
        raise Problem(415, "Unsupported media type", "send the body as application/json")
    max_bytes = req.context.max_body_bytes
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, "Content too large", f"the request body is limited to {max_bytes} bytes")
    try:
        body = json.loads(
            raw.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_NonFinite,
            object_pairs_hook=_object,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        body = _TOO_DEEP  # nested far too deep for the decoder itself
    if body is _TOO_DEEP or _deeper_than(body, MAX_DEPTH):
        raise Problem(
            400,
            "Malformed JSON",
            f"the body nests arrays and objects more than {MAX_DEPTH} levels deep",
        )
    if not isinstance(body, dict):
        raise Problem(
            422,
            "Invalid fields",
            "the body must be a JSON object",
            kind="invalid-fields",
            errors=[{"field": "", "message": "must be an object"}],
        )
    return body


def read_optional_json(req: falcon.Request) -> dict[str, Any]:
    """Like :func:`read_json`, but an empty body (whatever its Content-Type) is ``{}``."""
    if not req.content_length:
        return {}
    return read_json(req)
