"""HTTP calls to a service: one call, one deadline, and a typed outcome.

A call either comes back as a :class:`Reply` (a 2xx or 4xx answer whose body is
JSON or empty) or as a :class:`Failure` naming why the service could not be
used: ``unavailable`` (no connection, or a 503), ``timeout`` (no complete answer
before the deadline), ``error`` (another 5xx, a broken connection, a body that
is not JSON). Calls run on a shared thread pool so independent ones overlap.

Each service has a pool of keep-alive connections (urllib3), as many as the
thread pool has threads: a call takes an idle connection, or opens one, and
gives it back when it has read the whole answer. A connection the service has
closed while idle is noticed before it is used and replaced. No call is
retried: a failure is the caller's to report (``partial_failures``).

Each call is a CLIENT span, a child of the span current when it was started
(the gateway's SERVER span), and the ``traceparent`` sent to the service names
that CLIENT span, so the service's SERVER span is its child.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import urllib3
from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from ops.shared.tracing import current_carrier

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
        pool_class = (
            urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        )
        # block=False: a burst beyond idle_connections opens more, closed after use.
        self.connections = pool_class(
            self.host, self.port, maxsize=idle_connections, block=False, retries=False
        )

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
        with tracer.start_as_current_span(
            f"{request.method} {self.service}",
            context=parent,
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "http.request.method": request.method,
                "server.address": self.host,
                "server.port": self.port,
                "url.full": self.origin + request.target,
                "peer.service": self.service,
            },
        ) as span:
            request.headers.update(current_carrier())  # names this span, when there is one
            outcome = self._exchange(request)
            if isinstance(outcome, Reply):
                span.set_attribute("http.response.status_code", outcome.status)
            else:
                span.set_attribute("error.type", outcome.reason)
                span.set_status(Status(StatusCode.ERROR, outcome.detail))
            return outcome

    def _exchange(self, request: _Request) -> Outcome:
        """Run one request on a pooled connection, never past its deadline. Whatever the
        service does (refuse, stall, break the connection, answer garbage) comes back as
        an outcome, never as an exception."""
        response = self._send(request)
        if isinstance(response, Failure):
            return response
        try:
            raw = _read(response, request.deadline)
        except (ReadTimeoutError, TimeoutError):
            response.close()
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        except (HTTPError, OSError) as exc:
            response.close()
            return self._failure("error", f"the connection broke: {_cause(exc)}")
        finally:
            response.release_conn()  # back to the pool, or dropped if it was closed
        return self._interpret(response.status, raw, dict(response.headers))

    def _send(self, request: _Request) -> urllib3.BaseHTTPResponse | Failure:
        """Send the request and read the answer's head; a failure if that cannot be done."""
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        try:
            return self.connections.urlopen(
                request.method,
                request.target,
                body=request.payload,
                headers=request.headers,
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                preload_content=False,
                release_conn=False,
            )
        except NewConnectionError as exc:
            return self._failure("unavailable", f"cannot connect: {_cause(exc)}")
        except ConnectTimeoutError:
            return self._failure("timeout", f"no connection within {self.timeout:g} s")
        except ReadTimeoutError:
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        except (HTTPError, OSError) as exc:
            return self._failure("error", f"the connection broke: {_cause(exc)}")

    def _interpret(self, status: int, raw: bytes, headers: dict[str, str]) -> Outcome:
        if len(raw) > MAX_RESPONSE_BYTES:
            return self._failure("error", f"the answer exceeds {MAX_RESPONSE_BYTES} bytes")
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


def _read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """The whole body, at most ``MAX_RESPONSE_BYTES + 1`` bytes of it (the connection is
    closed if more is left), each socket read waiting only until ``deadline``."""
    chunks = []
    size = 0
    while size <= MAX_RESPONSE_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read(min(READ_CHUNK, MAX_RESPONSE_BYTES + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    response.close()  # too large: the rest is not read, so the connection is not reused
    return b"".join(chunks)


def _cause(exc: BaseException) -> str:
    """The class name of the error underneath urllib3's wrapping (``ConnectionRefusedError``)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        inner = exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return type(exc).__name__


def _title(body: Any) -> str:
    """``": <problem title>"`` when the body is a problem document, else nothing."""
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        return f": {body['title']}"
    return ""
