"""Closed-loop HTTP load: ``concurrency`` threads, one keep-alive connection each.

Why threads and ``http.client``: it is stdlib only, each thread owns one
HTTP/1.1 connection that waitress keeps alive, so the benchmark measures
request handling rather than TCP set-up, and a thread blocks on its socket
(releasing the GIL) for almost all of a request. The price is that the client
runs in one Python process on the same machine as the system under test and
takes CPU from it; the report states how much.

The loop is closed: a thread sends its next order only when the previous one
was answered, so ``concurrency`` requests are in flight at any moment. The
latency figures are therefore service times at that concurrency, not the
latency an open stream of arrivals at the same rate would see (no correction
for coordinated omission is attempted).

Order ``n`` is placed for customer ``bench-c{n % 50}`` with the Idempotency-Key
``{key_prefix}-{n}``, carrying that customer's bearer token (``tokens``, minted
by :mod:`tests.bench.identity`). A request that raises (connection reset, timeout) is
recorded as an error and not retried; the thread then opens a new connection.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

CUSTOMERS = 50


@dataclass(frozen=True)
class Sample:
    """The outcome of one ``POST /orders``."""

    index: int
    status: int | None  # None when the request raised instead of answering
    error: str | None  # exception class name, or a short problem detail for non-201 answers
    latency: float  # seconds, client side, from sending the request to reading the whole body
    order_id: str | None  # set for 201 answers
    replayed: bool  # the answer carried Idempotent-Replayed: true
    # open loop only (tests.bench.openloop); None from the closed-loop client
    scheduled: float | None = None  # seconds from the phase's first scheduled send
    start_lag: float | None = None  # seconds the send started after its scheduled time
    service_time: float | None = None  # seconds from the actual start to the whole body


@dataclass(frozen=True)
class LoadResult:
    """Every sample of one load phase and the phase's window."""

    samples: list[Sample]
    seconds: float  # monotonic duration from the start barrier to the last answer
    finished: float  # time.monotonic() when the last thread finished
    wall_started: float  # time.time() when the threads were released
    wall_finished: float  # time.time() when the last thread finished
    # open loop only (tests.bench.openloop); None from the closed-loop client
    offered_rate: float | None = None  # requests per second the phase was scheduled at
    late_starts: int | None = None  # sends that started later than the lateness allowance
    max_start_lag: float | None = None  # seconds, the latest send relative to its schedule
    connections_opened: int | None = None  # TCP connections the phase opened
    client_cpu_seconds: float | None = None  # CPU the generator's thread used in the phase


class _Tickets:
    """Hands out order numbers ``first .. first + count - 1`` to threads, once each."""

    def __init__(self, first: int, count: int) -> None:
        self._next = first
        self._end = first + count
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """The next order number, or None when all were handed out."""
        with self._lock:
            if self._next >= self._end:
                return None
            self._next += 1
            return self._next - 1


def customer_of(index: int) -> str:
    """The customer who places order number ``index``."""
    return f"bench-c{index % CUSTOMERS}"


def order_headers(index: int, key_prefix: str, tokens: Mapping[str, str]) -> dict[str, str]:
    """The request headers of order number ``index``: JSON, its Idempotency-Key, its token."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Idempotency-Key": f"{key_prefix}-{index}",
        "Authorization": f"Bearer {tokens[customer_of(index)]}",
    }


def order_body(index: int) -> bytes:
    """The JSON body of order number ``index``."""
    body = {  # the customer is the token's subject, not a body field
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _post_order(
    connection: http.client.HTTPConnection,
    index: int,
    key_prefix: str,
    tokens: Mapping[str, str],
) -> tuple[Sample, bool]:
    """Send one order; returns its sample and whether the connection may be reused."""
    headers = order_headers(index, key_prefix, tokens)
    body = order_body(index)
    started = time.perf_counter()
    try:
        connection.request("POST", "/orders", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        latency = time.perf_counter() - started
        return Sample(index, None, type(exc).__name__, latency, None, False), False
    latency = time.perf_counter() - started
    replayed = response.getheader("Idempotent-Replayed") == "true"
    order_id = None
    error = None
    if response.status == 201:
        order_id = str(json.loads(data)["id"])
    else:
        error = _problem_summary(data)
    sample = Sample(index, response.status, error, latency, order_id, replayed)
    return sample, not response.will_close


def _problem_summary(data: bytes) -> str:
    """A short description of an error answer (its problem title and detail)."""
    try:
        problem = json.loads(data)
    except ValueError:
        return data[:120].decode("utf-8", "replace")
    if not isinstance(problem, dict):
        return str(problem)[:120]
    return f"{problem.get('title', '')}: {problem.get('detail', '')}"[:200]


def _worker(
    host: str,
    port: int,
    tickets: _Tickets,
    key_prefix: str,
    tokens: Mapping[str, str],
    timeout: float,
    start: threading.Barrier,
    out: list[Sample],
) -> None:
    """One client thread: connect, wait for the start signal, then post orders until done."""
    connection: http.client.HTTPConnection | None = http.client.HTTPConnection(
        host, port, timeout=timeout
    )
    try:
        connection.connect()  # type: ignore[union-attr]
    except OSError:
        connection = None  # the first request reconnects and records the failure
    start.wait()
    while (index := tickets.take()) is not None:
        if connection is None:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        sample, reusable = _post_order(connection, index, key_prefix, tokens)
        out.append(sample)
        if not reusable:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def run_load(
    host: str,
    port: int,
    *,
    first: int,
    count: int,
    concurrency: int,
    key_prefix: str,
    tokens: Mapping[str, str],
    timeout: float,
) -> LoadResult:
    """Post orders ``first .. first + count - 1`` with ``concurrency`` threads."""
    tickets = _Tickets(first, count)
    threads_count = max(1, min(concurrency, count))
    start = threading.Barrier(threads_count + 1)
    outputs: list[list[Sample]] = [[] for _ in range(threads_count)]
    threads = [
        threading.Thread(
            target=_worker,
            args=(host, port, tickets, key_prefix, tokens, timeout, start, outputs[number]),
            name=f"bench-client-{number}",
            daemon=True,
        )
        for number in range(threads_count)
    ]
    for thread in threads:
        thread.start()
    start.wait()  # every thread is connected: the window opens now
    began = time.perf_counter()
    wall_started = time.time()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    finished = time.monotonic()
    samples = sorted((s for output in outputs for s in output), key=lambda s: s.index)
    return LoadResult(samples, seconds, finished, wall_started, time.time())
