"""HTTP calls to a service: one call, one deadline, and a typed outcome.

A call either comes back as a :class:`Reply` (a 2xx or 4xx answer whose body is
JSON or empty) or as a :class:`Failure` naming why the service could not be
used: ``unavailable`` (no connection, or a 503), ``timeout`` (no complete answer
before the deadline), ``error`` (another 5xx, a broken connection, a body that
is not JSON). Calls run on a shared thread pool so independent ones overlap.

Each service has a pool of keep-alive connections (:mod:`gateway.connections`):
a call takes an idle connection, or opens one, and gives it back when it has
read the whole answer. A connection the service has closed while idle is
noticed before it is used and replaced; should the service close it in the
instant between that check and the request, a GET is sent once more on a new
connection (the request never reached the service). Nothing else is retried: a
failure is the caller's to report (``partial_failures``).

Each call is a CLIENT span, a child of the span current when it was started
(the gateway's SERVER span), and the ``traceparent`` sent to the service names
that CLIENT span, so the service's SERVER span is its child.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.connections import KeepAlivePool
from ops.shared.telemetry.tracing import current_carrier

Reason = Literal["unavailable", "timeout", "error"]

# Request headers passed on to the services when the caller sent them.
FORWARDED_HEADERS = ("Authorization", "X-Correlation-ID", "traceparent", "tracestate")
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
READ_CHUNK = 64 * 1024

tracer = trace.get_tracer("orderflow.gateway")


@dataclass(frozen=True)
class Reply:
    """A service answered 2xx or 4xx; ``body`` is the parsed JSON (``None`` if empty)."""

    service: str
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Failure:
    """A service could not be used; ``as_marker()`` is the ``partial_failures`` entry."""

    service: str
    reason: Reason
    detail: str

    def as_marker(self) -> dict[str, str]:
        return {"service": self.service, "reason": self.reason, "detail": self.detail}


Outcome = Reply | Failure


def forwarded_headers(get_header: Callable[[str], str | None]) -> dict[str, str]:
    """The caller's headers the services must see (token, correlation and trace ids).

    Inside a traced request the trace headers name the gateway's own span, so the
    services' spans are its children; otherwise the caller's are passed through.
    """
    headers = {name: value for name in FORWARDED_HEADERS if (value := get_header(name))}
    headers.update(current_carrier())
    return headers


class Pending:
    """A call in flight. :meth:`result` waits at most until the call's deadline."""

    def __init__(self, service: str, future: Future[Outcome], deadline: float, timeout: float):
        self.service = service
        self.future = future
        self.deadline = deadline
        self.timeout = timeout

    def result(self) -> Outcome:
        """The outcome; a call not finished by its deadline is a ``timeout`` failure."""
        try:
            return self.future.result(timeout=max(self.deadline - time.monotonic(), 0.0))
        except FutureTimeout:
            self.future.cancel()
            return Failure(self.service, "timeout", f"no answer within {self.timeout:g} s")


@dataclass(frozen=True)
class _Request:
    """One call as it goes on the wire."""

    method: str
    target: str  # path and query
    headers: dict[str, str]
    payload: bytes | None
    deadline: float  # time.monotonic() after which the call has timed out


class ServiceClient:
    """Calls one service at ``base_url`` (``http://`` or ``https://``, optional path prefix)
    on the threads of ``pool``, keeping up to ``idle_connections`` connections open."""

    def __init__(
        self,
        service: str,
        base_url: str,
        timeout: float,
        pool: ThreadPoolExecutor,
        idle_connections: int,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the {service} URL must be http(s)://host[:port], got {base_url!r}")
        if not timeout > 0:
            raise ValueError("the timeout must be a positive number of seconds")
        self.service = service
        self.timeout = timeout
        self.pool = pool
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.https = parts.scheme == "https"
        # a burst beyond idle_connections opens more, closed after use
        self.connections = KeepAlivePool(self._connection, idle_connections)

    def start(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Pending:
        """Start ``method path?params`` now; the deadline is ``timeout`` seconds from now.

        ``params`` may repeat a name; ``body`` (if not ``None``) is sent as JSON.
        """
        deadline = time.monotonic() + self.timeout
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        sent = {"Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        parent = context.get_current()  # the request's span, for the call's CLIENT span
        request = _Request(method, target, sent, payload, deadline)
        future = self.pool.submit(self._traced, parent, request)
        return Pending(self.service, future, deadline, self.timeout)

    def call(self, method: str, path: str, **options: Any) -> Outcome:
        """Like :meth:`start`, waiting for the outcome."""
        return self.start(method, path, **options).result()

    def _traced(self, parent: context.Context, request: _Request) -> Outcome:
        """:meth:`_exchange` inside a CLIENT span whose ``traceparent`` the service gets."""
        span = tracer.start_span(
            f"{request.method} {self.service}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "server.address": self.host,
                "server.port": self.port,
                "url.full": self.origin + request.target,
                "peer.service": self.service,
            },
        )
        try:
            sent = span.get_span_context()
            if sent.is_valid:  # tracing is on: the service's span is this span's child
                request.headers["traceparent"] = (
                    f"00-{sent.trace_id:032x}-{sent.span_id:016x}-{sent.trace_flags:02x}"
                )
            outcome = self._exchange(request)
            if isinstance(outcome, Reply):
                span.set_attribute("http.response.status_code", outcome.status)
            else:
                span.set_attribute("error.type", outcome.reason)
                span.set_status(Status(StatusCode.ERROR, outcome.detail))
            return outcome
        finally:
            span.end()

    def _connection(self) -> http.client.HTTPConnection:
        """A new connection, not yet connected."""
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port)
        return http.client.HTTPConnection(self.host, self.port)

    def _exchange(self, request: _Request) -> Outcome:
        """Run one request on a pooled connection, never past its deadline. Whatever the
        service does (refuse, stall, break the connection, answer garbage) comes back as
        an outcome, never as an exception."""
        connection, reused = self.connections.take()
        outcome = self._attempt(request, connection, reused)
        if outcome is _CLOSED_WHILE_IDLE:  # the request never reached the service
            outcome = self._attempt(request, self._connection(), False)
        assert outcome is not _CLOSED_WHILE_IDLE
        return outcome

    def _attempt(
        self, request: _Request, connection: http.client.HTTPConnection, reused: bool
    ) -> Any:
        """One exchange on ``connection``: an outcome, or ``_CLOSED_WHILE_IDLE`` when a
        reused connection turned out closed before a GET's answer began."""
        response = self._connect(request, connection) or self._send(request, connection, reused)
        if not isinstance(response, http.client.HTTPResponse):
            return response
        try:
            raw = _read(response, connection, request.deadline)
        except TimeoutError:
            connection.close()
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            return self._failure("error", f"the connection broke: {type(exc).__name__}")
        if raw is None:
            connection.close()
            return self._failure("error", f"the answer exceeds {MAX_RESPONSE_BYTES} bytes")
        if response.will_close:
            connection.close()
        else:
            self.connections.give_back(connection)
        return self._interpret(response.status, raw, dict(response.getheaders()))

    def _send(self, request: _Request, connection: http.client.HTTPConnection, reused: bool) -> Any:
        """Send the request and read the answer's head: the response, a failure, or
        ``_CLOSED_WHILE_IDLE``."""
        try:
            _limit(connection, request.deadline)
            connection.request(
                request.method, request.target, body=request.payload, headers=request.headers
            )
            _limit(connection, request.deadline)
            return connection.getresponse()
        except TimeoutError:
            connection.close()
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if reused and request.method == "GET" and isinstance(exc, _HUNG_UP):
                return _CLOSED_WHILE_IDLE
            return self._failure("error", f"the connection broke: {type(exc).__name__}")

    def _connect(self, request: _Request, connection: http.client.HTTPConnection) -> Any:
        """Connect ``connection`` if it is new; a failure if that cannot be done in time."""
        if connection.sock is not None:
            return None
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        connection.timeout = remaining
        try:
            connection.connect()
        except TimeoutError:
            connection.close()
            return self._failure("timeout", f"no connection within {self.timeout:g} s")
        except OSError as exc:
            connection.close()
            return self._failure("unavailable", f"cannot connect: {exc}")
        return None

    def _interpret(self, status: int, raw: bytes, headers: dict[str, str]) -> Outcome:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _NOT_JSON
        if status == 503:
            return self._failure("unavailable", f"answered 503{_title(body)}")
        if status >= 500 or not (200 <= status < 300 or 400 <= status < 500):
            return self._failure("error", f"answered {status}{_title(body)}")
        if body is _NOT_JSON:
            return self._failure("error", f"answered {status} with a body that is not JSON")
        lowered = {name.lower(): value for name, value in headers.items()}
        return Reply(self.service, status, body, lowered)

    def _failure(self, reason: Reason, detail: str) -> Failure:
        return Failure(self.service, reason, detail)


_NOT_JSON = object()


# How a connection closed by the service shows when it is used: the request could not be
# written, or the answer ended before its status line.
_HUNG_UP = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
_CLOSED_WHILE_IDLE = object()


def _read(
    response: http.client.HTTPResponse, connection: http.client.HTTPConnection, deadline: float
) -> bytes | None:
    """The whole body, or ``None`` if it is larger than ``MAX_RESPONSE_BYTES`` (the rest
    is not read); each socket read waits only until ``deadline`` (an answer that closes
    the connection keeps the socket's last limit: ``http.client`` hands it over)."""
    if response.length is not None and response.length <= MAX_RESPONSE_BYTES:
        _limit(connection, deadline)
        return response.read()  # one read: the usual answer, with a Content-Length
    chunks = []
    size = 0
    while size <= MAX_RESPONSE_BYTES:
        _limit(connection, deadline)
        chunk = response.read(min(READ_CHUNK, MAX_RESPONSE_BYTES + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _limit(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Let the next socket operation wait only until ``deadline`` (``TimeoutError`` if past)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(remaining)


def _title(body: Any) -> str:
    """``": <problem title>"`` when the body is a problem document, else nothing."""
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        return f": {body['title']}"
    return ""
