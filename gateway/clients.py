"""HTTP calls to a service: one call, one deadline, and a typed outcome.

A call either comes back as a :class:`Reply` (a 2xx or 4xx answer whose body is
JSON or empty) or as a :class:`Failure` naming why the service could not be
used: ``unavailable`` (no connection, or a 503), ``timeout`` (no complete answer
before the deadline), ``error`` (another 5xx, a broken connection, a body that
is not JSON). Calls run on a shared thread pool so independent ones overlap.
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

from ops.shared.tracing import current_carrier

Reason = Literal["unavailable", "timeout", "error"]

# Request headers passed on to the services when the caller sent them.
FORWARDED_HEADERS = ("Authorization", "X-Correlation-ID", "traceparent", "tracestate")
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


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


class ServiceClient:
    """Calls one service at ``base_url`` (``http://`` or ``https://``, optional path prefix)."""

    def __init__(self, service: str, base_url: str, timeout: float, pool: ThreadPoolExecutor):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the {service} URL must be http(s)://host[:port], got {base_url!r}")
        if not timeout > 0:
            raise ValueError("the timeout must be a positive number of seconds")
        self.service = service
        self.timeout = timeout
        self.pool = pool
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.https = parts.scheme == "https"

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
        future = self.pool.submit(self._exchange, method, target, sent, payload, deadline)
        return Pending(self.service, future, deadline, self.timeout)

    def call(self, method: str, path: str, **options: Any) -> Outcome:
        """Like :meth:`start`, waiting for the outcome."""
        return self.start(method, path, **options).result()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        payload: bytes | None,
        deadline: float,
    ) -> Outcome:
        """Run one request on a fresh connection, never past ``deadline``. Whatever the
        service does (refuse, stall, break the connection, answer garbage) comes back as
        an outcome, never as an exception."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return self._failure("timeout", f"no answer within {self.timeout:g} s")
        connection = self._connection(remaining)
        try:
            try:
                connection.connect()
            except TimeoutError:
                return self._failure("timeout", f"no connection within {self.timeout:g} s")
            except OSError as exc:
                return self._failure("unavailable", f"cannot connect: {exc}")
            try:
                _limit(connection, deadline)
                connection.request(method, target, body=payload, headers=headers)
                _limit(connection, deadline)
                response = connection.getresponse()
                _limit(connection, deadline)
                raw = response.read(MAX_RESPONSE_BYTES + 1)
            except TimeoutError:
                return self._failure("timeout", f"no answer within {self.timeout:g} s")
            except (OSError, http.client.HTTPException) as exc:
                return self._failure("error", f"the connection broke: {type(exc).__name__}")
        finally:
            connection.close()
        return self._interpret(response.status, raw, dict(response.getheaders()))

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


def _limit(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Let the next socket operation wait only until ``deadline``."""
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
