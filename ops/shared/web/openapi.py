"""OpenAPI descriptions: load a package's ``openapi.json``, serve it, list an app's routes.

Each HTTP front ships its description as package data (``orders/openapi.json``,
``invoices/openapi.json``, ``gateway/openapi.json``) and answers it at the
public path ``GET /openapi.json``. :func:`routes_of` lists what a Falcon app
really serves, so a test can compare it with what the description claims.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import falcon

DOCUMENT_NAME = "openapi.json"

# A Falcon field: ``{name}``, ``{name:converter}`` or ``{name:converter(args)}``.
_FIELD = re.compile(r"\{(?P<name>[^}:]+)(?::[^}(]*(?:\([^}]*\))?)?\}")
_IGNORED_METHODS = frozenset({"OPTIONS", "WEBSOCKET"})


def load_document(package: str) -> dict[str, Any]:
    """The OpenAPI document shipped as ``<package>/openapi.json``."""
    text = resources.files(package).joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"{package}/{DOCUMENT_NAME} is not a JSON object")
    return document


class OpenApiDocument:
    """``GET /openapi.json``: the service's OpenAPI description (a public path)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document, separators=(",", ":")).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body


def openapi_path(uri_template: str) -> str:
    """A Falcon URI template as an OpenAPI path: ``/orders/{order_id:uuid}`` →
    ``/orders/{order_id}``."""
    return _FIELD.sub(lambda match: "{" + match.group("name").strip() + "}", uri_template)


def routes_of(app: falcon.App) -> set[tuple[str, str]]:
    """``(METHOD, path)`` for each method a resource of ``app`` implements.

    Walks Falcon 4's compiled router. Falcon fills every method a resource lacks
    with a default responder (405, or the automatic OPTIONS answer); those are
    not bound to the resource and are left out, as are OPTIONS and WEBSOCKET.
    """
    routes = set()
    for node in _nodes(app._router._roots):  # Falcon offers no public walk
        if node.uri_template is None or node.method_map is None:
            continue
        path = openapi_path(node.uri_template)
        for method, responder in node.method_map.items():
            if method in _IGNORED_METHODS:
                continue
            if getattr(responder, "__self__", None) is node.resource:
                routes.add((method, path))
    return routes


def _nodes(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _nodes(node.children)
