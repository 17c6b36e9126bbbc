"""The open-loop load generator against a small HTTP/1.1 server in a thread of this process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.bench.client import CUSTOMERS, LoadResult, customer_of, order_body
from tests.bench.openloop import _read_answer, orders_for, run_open_loop

TOKENS = {customer_of(index): f"token-{index}" for index in range(CUSTOMERS)}


class _Server(ThreadingHTTPServer):
    """Answers ``POST /orders`` with 201 and ``{"id": <Idempotency-Key>}``; counts connections.

    ``stall_key``'s request holds ``gate`` for ``stall`` seconds, and every other
    request passes through ``gate`` before answering: the whole server stalls.
    """

    daemon_threads = True
    request_queue_size = 256  # a burst of new connections must not overflow the backlog

    def __init__(self, *, stall_key: str = "", stall: float = 0.0, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stall_key, self.stall, self.delay = stall_key, stall, delay
        self.close_each = False
        self.gate = threading.Lock()
        self.counter = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[dict[str, str], bytes]] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients that timed out leave broken pipes behind on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.counter:
            self.server.connections += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers["Idempotency-Key"]
        with self.server.counter:
            self.server.requests.append((dict(self.headers.items()), body))
        with self.server.gate:
            if key == self.server.stall_key:
                time.sleep(self.server.stall)  # the simulated stall, not a synchronisation
        if self.server.delay:
            time.sleep(self.server.delay)  # a slow handler
        answer = json.dumps({"id": key}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Idempotent-Replayed", "false")
        if self.server.close_each:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    """``server`` serving in a thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _running(_Server()) as running:
        yield running


def _load(port: int, **options: object) -> LoadResult:
    settings: dict = {"first": 0, "key_prefix": "t", "tokens": TOKENS, "timeout": 5.0}
    settings.update(options)
    return run_open_loop("127.0.0.1", port, **settings)


def test_the_offered_rate_is_achieved_and_the_window_matches_it(server: _Server) -> None:
    # Given a fast server
    # When 200 orders per second are offered for one second
    result = _load(server.port, rate=200, count=orders_for(200, 1.0))
    # Then all 200 were sent at about 200 per second and answered within about a second
    assert len(result.samples) == 200
    assert all(sample.status == 201 for sample in result.samples)
    starts = [sample.scheduled + sample.start_lag for sample in result.samples]
    achieved = (len(starts) - 1) / (max(starts) - min(starts))
    assert 180 <= achieved <= 220
    assert 0.99 <= result.seconds <= 1.3
    assert result.offered_rate == 200
    assert result.late_starts <= 10
    assert result.client_cpu_seconds is not None


def test_requests_carry_the_closed_loop_clients_headers_and_body(server: _Server) -> None:
    # When three orders from number 7 on are posted
    result = _load(server.port, rate=100, count=3, first=7, key_prefix="run")
    # Then each has its key, its customer's token and the closed-loop client's body
    assert [sample.index for sample in result.samples] == [7, 8, 9]
    assert [sample.order_id for sample in result.samples] == ["run-7", "run-8", "run-9"]
    seen = sorted(server.requests, key=lambda request: request[0]["Idempotency-Key"])
    for (headers, body), index in zip(seen, (7, 8, 9), strict=True):
        assert headers["Authorization"] == f"Bearer {TOKENS[customer_of(index)]}"
        assert headers["Content-Type"] == "application/json"
        assert body == order_body(index)


def test_latency_counts_from_the_scheduled_time_through_a_server_stall() -> None:
    # Given a server that stalls for 0.3 s when it receives order 50
    with _running(_Server(stall_key="t-50", stall=0.3)) as stalling:
        # When 200 orders per second are offered for one second
        result = _load(stalling.port, rate=200, count=200)
    # Then order 50 and every order scheduled during the stall waited until its end
    samples = {sample.index: sample for sample in result.samples}
    assert samples[50].latency >= 0.3
    stall_end = samples[50].scheduled + 0.3
    during = [samples[index] for index in range(52, 50 + 60)]
    for sample in during:
        assert sample.latency >= stall_end - sample.scheduled - 0.01
    # And the generator kept sending on schedule meanwhile, on new connections
    assert max(sample.start_lag for sample in during) < 0.1
    assert result.connections_opened >= 30
    assert all(sample.status == 201 for sample in result.samples)


def test_refused_connections_are_error_samples() -> None:
    # Given a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When orders are offered to it
    result = _load(port, rate=100, count=5)
    # Then every order is a failed sample named after the exception
    assert [sample.status for sample in result.samples] == [None] * 5
    assert {sample.error for sample in result.samples} == {"ConnectionRefusedError"}
    assert all(sample.order_id is None for sample in result.samples)


def test_a_request_slower_than_the_timeout_is_a_timeout_sample() -> None:
    # Given a server that takes 0.5 s per request
    with _running(_Server(delay=0.5)) as slow:
        # When the client allows 0.1 s
        result = _load(slow.port, rate=50, count=2, timeout=0.1)
    # Then both are timeouts after about 0.1 s
    assert {sample.error for sample in result.samples} == {"TimeoutError"}
    assert all(0.1 <= sample.service_time < 0.4 for sample in result.samples)


def test_keep_alive_connections_are_reused(server: _Server) -> None:
    # When 100 orders are offered to a fast server
    result = _load(server.port, rate=200, count=100)
    # Then a handful of connections carried them all
    assert all(sample.status == 201 for sample in result.samples)
    assert result.connections_opened == server.connections
    assert server.connections <= 10


def test_connection_close_answers_are_not_reused(server: _Server) -> None:
    # Given a server that closes every connection after its answer
    server.close_each = True
    # When 20 orders are offered
    result = _load(server.port, rate=200, count=20)
    # Then each went on a connection of its own, and all succeeded
    assert all(sample.status == 201 for sample in result.samples)
    assert server.connections == 20 == result.connections_opened


def test_a_full_in_flight_limit_is_recorded_as_late_starts() -> None:
    # Given a server that takes 50 ms per request
    with _running(_Server(delay=0.05)) as slow:
        # When 200 orders per second are offered but only 2 may be in flight
        result = _load(slow.port, rate=200, count=40, max_in_flight=2)
    # Then the generator says it fell behind, and latency includes the wait for a slot
    assert result.late_starts > 20
    assert result.max_start_lag > 0.3
    last = result.samples[-1]
    assert last.latency == pytest.approx(last.start_lag + last.service_time)
    assert last.latency > 0.3 > last.service_time


def test_an_http_1_0_answer_without_keep_alive_closes_the_connection() -> None:
    # Given an HTTP/1.0 answer with a body
    async def read() -> object:
        reader = asyncio.StreamReader()
        reader.feed_data(b'HTTP/1.0 201 Created\r\nContent-Length: 9\r\n\r\n{"id":1}\n')
        reader.feed_eof()
        return await _read_answer(reader)

    # When it is read
    answer = asyncio.run(read())
    # Then the body is complete and the connection is not reused
    assert answer.status == 201
    assert answer.body == b'{"id":1}\n'
    assert not answer.reusable
