"""The demo's HTTP client: requests with a bearer token, listings, threads, polling."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from typing import Any, NamedTuple, TypeVar

from ops.settings import Settings

CLIENT_THREADS = 8
REQUEST_TIMEOUT = 10.0  # seconds, per HTTP request
POLL_INTERVAL = 0.25  # seconds between two looks at a condition we wait for
PAGE_LIMIT = 10  # small pages, so every listing walks next_cursor

Item = dict[str, Any]  # an order or an invoice as the API shows it
T = TypeVar("T")


class Reply(NamedTuple):
    """One HTTP answer: status (0 when none came), headers, and JSON body (None if not JSON)."""

    status: int
    headers: Message
    body: Any


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the two services and of the gateway (the BFF)."""

    orders: str
    invoices: str
    gateway: str

    @classmethod
    def of(cls, settings: Settings) -> Endpoints:
        """The services and the gateway of ``settings`` (host and ports)."""
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        return cls(
            f"http://{host}:{settings.orders_port}",
            f"http://{host}:{settings.invoices_port}",
            f"http://{host}:{settings.gateway_port}",
        )


def call(
    method: str,
    url: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    *,
    token: str | None,
) -> Reply:
    """Send one request with a JSON body (if any) as the bearer of ``token`` (None: send
    no Authorization header); never raises.

    Any HTTP status comes back as a :class:`Reply`; a transport failure (refused,
    reset, timed out after ``REQUEST_TIMEOUT``) comes back with status 0.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http:// only
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            return Reply(response.status, response.headers, _decode(response.read()))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, _decode(_read_error_body(exc)))
    except (OSError, http.client.HTTPException) as exc:
        return Reply(0, Message(), {"error": f"{type(exc).__name__}: {exc}"})


def _read_error_body(exc: urllib.error.HTTPError) -> bytes:
    """The body of an error response, or nothing if it cannot be read."""
    try:
        return exc.read()
    except (OSError, http.client.HTTPException):
        return b""


def _decode(raw: bytes) -> Any:
    """Parse a JSON body; None for an empty or non-JSON body."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def url(base: str, path: str, **query: object) -> str:
    """``base + path`` with the query parameters that are not None."""
    params = {name: value for name, value in query.items() if value is not None}
    return f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"


def collect(base: str, path: str, *, token: str, **query: object) -> list[Item] | None:
    """Every item of a listing as the bearer of ``token``, page by page through
    ``next_cursor``; None on any error."""
    items: list[Item] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        reply = call("GET", url(base, path, **query, limit=PAGE_LIMIT, cursor=cursor), token=token)
        if reply.status != 200 or not isinstance(reply.body, dict):
            return None
        items.extend(reply.body.get("items") or [])
        cursor = reply.body.get("next_cursor")
        if not cursor:
            return items
        if cursor in seen:  # a cursor that leads back: the listing would never end
            return None
        seen.add(cursor)


def idempotency_key() -> dict[str, str]:
    """A header with a fresh Idempotency-Key."""
    return {"Idempotency-Key": str(uuid.uuid4())}


def parallel(function: Callable[..., T], *iterables: Iterable[Any]) -> list[T]:
    """``map(function, *iterables)`` on ``CLIENT_THREADS`` threads, results in order."""
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        return list(pool.map(function, *iterables))


def only(predicate: Callable[[str], bool], ids: set[str]) -> set[str]:
    """The ids for which ``predicate`` holds, evaluated concurrently."""
    ordered = sorted(ids)
    return {i for i, keep in zip(ordered, parallel(predicate, ordered), strict=True) if keep}


def poll_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Evaluate ``condition`` every ``POLL_INTERVAL`` until it holds (True) or the
    monotonic ``deadline`` passes (False)."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def describe(reply: Reply) -> str:
    """A short account of an answer: status and the problem's detail or error."""
    body = reply.body if isinstance(reply.body, dict) else {}
    detail = body.get("detail") or body.get("error") or body.get("title") or ""
    return f"{reply.status or 'no answer'} {detail}".strip()
