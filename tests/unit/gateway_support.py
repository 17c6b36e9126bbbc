"""Test helpers for the gateway: real HTTP servers in threads, request recorders, and
ports that refuse connections or never answer."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from ops.serving import http_server, run_http_server
from ops.settings import Settings
from ops.shared.web.openapi import load_document

WSGIApp = Callable[..., Any]


@dataclass
class Request:
    """One request a recorded app received."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass
class Recorder:
    """A WSGI wrapper that records every request before passing it on."""

    app: WSGIApp
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = Request(
            environ["REQUEST_METHOD"],
            environ["PATH_INFO"],
            parse_qsl(environ.get("QUERY_STRING", "")),
            headers,
        )
        with self.lock:
            self.requests.append(request)
        return self.app(environ, start_response)

    def to(self, path_prefix: str) -> list[Request]:
        """The recorded requests whose path starts with ``path_prefix``."""
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


@dataclass
class Rendezvous:
    """A WSGI wrapper whose requests wait at a shared barrier: with ``Barrier(n)``, no
    request goes on until ``n`` are in flight together (else, after the barrier's
    timeout, each one fails with 500)."""

    app: WSGIApp
    barrier: threading.Barrier

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"the requests did not arrive together"]
        return self.app(environ, start_response)


@contextlib.contextmanager
def served(settings: Settings, *apps: WSGIApp) -> Iterator[list[str]]:
    """Serve each app with waitress (``ops.serving.http_server``) on a free port in a
    thread; yields their base URLs, and stops and joins every server on exit.

    Each server runs in ``ops.serving.run_http_server``, as in production.
    """
    servers = [http_server(app, settings, 0) for app in apps]
    stop = threading.Event()
    threads = [
        threading.Thread(target=run_http_server, args=(server, stop), name="test-http", daemon=True)
        for server in servers
    ]
    for thread in threads:
        thread.start()
    try:
        yield [f"http://{settings.host}:{server.effective_port}" for server in servers]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
            assert not thread.is_alive(), "a test server did not stop"


@contextlib.contextmanager
def refusing_port() -> Iterator[str]:
    """A URL whose port is bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def silent_port() -> Iterator[str]:
    """A URL whose server accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def failing_app(status: str) -> WSGIApp:
    """A WSGI app that answers every request with ``status`` and a problem document."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        code = int(status.split(maxsplit=1)[0])
        body = json.dumps({"type": "about:blank", "title": "Boom", "status": code}).encode()
        start_response(status, [("Content-Type", "application/problem+json")])
        return [body]

    return app


def http_json(
    method: str, url: str, token: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Call a service directly: the status and the parsed JSON body."""
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def assert_documented(body: Any, schema: str) -> None:
    """Assert that ``body`` matches ``#/components/schemas/<schema>`` of gateway/openapi.json."""
    uri = "urn:orderflow:openapi:gateway"
    registry = Registry().with_resource(uri, DRAFT202012.create_resource(load_document("gateway")))
    validator = Draft202012Validator(
        {"$ref": f"{uri}#/components/schemas/{schema}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    problems = [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    ]
    assert not problems, f"not a documented {schema}:\n" + "\n".join(problems)
