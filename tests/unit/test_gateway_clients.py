"""The gateway's transport (gateway.clients): pooled keep-alive connections, a CLIENT span
per upstream call, and every way a service can misbehave coming back as an outcome."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway import connections
from gateway.clients import MAX_RESPONSE_BYTES, Failure, Reply, ServiceClient

from .conftest import collect_spans
from .gateway_support import refusing_port

EXPORTER = InMemorySpanExporter()

# One exchange on a connection: given the request's head (bytes up to the blank line),
# the bytes to answer and whether to close the connection afterwards.
Behaviour = Callable[[bytes], tuple[bytes, bool]]


def answer(body: bytes, status: str = "200 OK", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class ScriptedServer:
    """A raw HTTP/1.1 server on a free port that counts the connections it accepts,
    records each request's head and answers as ``behaviour`` says."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.heads: list[bytes] = []
        self.closed = threading.Semaphore(0)  # released each time the server closes one
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        self.closed.release()
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                data, close = self.behaviour(head)
                conn.sendall(data)
                if close:
                    break
        self.closed.release()

    def header(self, index: int, name: str) -> str | None:
        """A header of the ``index``-th request received."""
        for line in self.heads[index].split(b"\r\n")[1:]:
            key, _, value = line.decode().partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self.accepting.join(timeout=5)
        assert not self.accepting.is_alive()


@contextlib.contextmanager
def scripted(behaviour: Behaviour) -> Iterator[ScriptedServer]:
    server = ScriptedServer(behaviour)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=4)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture(scope="module", autouse=True)
def spans() -> Iterator[None]:
    """Finished spans land in EXPORTER (see ``collect_spans``)."""
    collect_spans(EXPORTER)
    yield


@pytest.fixture(autouse=True)
def clean() -> None:
    EXPORTER.clear()


def client_for(url: str, pool: ThreadPoolExecutor, timeout: float = 2.0) -> ServiceClient:
    return ServiceClient("orders", url, timeout, pool, idle_connections=4)


def ok(head: bytes) -> tuple[bytes, bool]:
    return answer(b'{"ok": true}'), False


def client_spans() -> list:
    return [s for s in EXPORTER.get_finished_spans() if s.kind is SpanKind.CLIENT]


def test_calls_one_after_another_reuse_one_keep_alive_connection(
    pool: ThreadPoolExecutor,
) -> None:
    with scripted(ok) as server:
        client = client_for(server.url, pool)
        outcomes = [client.call("GET", f"/orders/{n}") for n in range(10)]
    assert all(isinstance(o, Reply) and o.body == {"ok": True} for o in outcomes)
    assert len(server.heads) == 10
    assert server.connections == 1


def test_a_connection_the_service_closed_while_idle_is_replaced_and_the_call_succeeds(
    pool: ThreadPoolExecutor,
) -> None:
    # Given a service that closes each connection after answering, without saying so
    def answer_then_hang_up(head: bytes) -> tuple[bytes, bool]:
        return answer(b"{}"), True

    with scripted(answer_then_hang_up) as server:
        client = client_for(server.url, pool)
        first = client.call("GET", "/orders/1")
        assert server.closed.acquire(timeout=5)  # the idle pooled connection is now dead
        second = client.call("GET", "/orders/2")
    assert isinstance(first, Reply) and isinstance(second, Reply)
    assert server.connections == 2


def test_a_get_on_a_connection_closed_in_the_instant_before_is_sent_again_and_a_post_is_not(
    pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a service that hangs up after each answer, and the idle check too late to see it
    monkeypatch.setattr(connections, "_still_open", lambda connection: True)

    def answer_then_hang_up(head: bytes) -> tuple[bytes, bool]:
        return answer(b"{}"), True

    with scripted(answer_then_hang_up) as server:
        client = client_for(server.url, pool)
        assert isinstance(client.call("GET", "/orders/1"), Reply)
        assert server.closed.acquire(timeout=5)
        # a GET finds the pooled connection closed and is sent again on a new one
        again = client.call("GET", "/orders/1")
        assert server.closed.acquire(timeout=5)
        # a POST is not sent twice: the caller hears the connection broke
        post = client.call("POST", "/orders", body={"currency": "EUR"})
    assert isinstance(again, Reply)
    assert isinstance(post, Failure) and post.detail.startswith("the connection broke")
    assert server.connections == 2  # the first, the GET's second try (the POST's is dead)
    assert len(server.heads) == 2  # the POST never reached it, and was not sent again


def test_no_more_idle_connections_are_kept_than_asked() -> None:
    made = []

    def factory() -> http.client.HTTPConnection:
        made.append(http.client.HTTPConnection("127.0.0.1", 1))
        return made[-1]

    keeper = connections.KeepAlivePool(factory, keep=2)
    taken = [keeper.take() for _ in range(3)]
    assert [reused for _, reused in taken] == [False, False, False]
    for connection, _ in taken:
        keeper.give_back(connection)
    assert keeper.idle() == 2


def test_each_call_is_a_client_span_and_the_service_sees_its_traceparent(
    pool: ThreadPoolExecutor,
) -> None:
    tracer = trace.get_tracer("test")
    with scripted(ok) as server:
        client = client_for(server.url, pool)
        with tracer.start_as_current_span("GET /me/orders/{id}", kind=SpanKind.SERVER) as parent:
            first = client.start("GET", "/orders/1", headers={"traceparent": "00-stale-01"})
            second = client.start("GET", "/orders/1/timeline")
            assert isinstance(first.result(), Reply) and isinstance(second.result(), Reply)
        sent = {server.header(n, "traceparent").rsplit("-", 1)[0] for n in range(2)}

    calls = client_spans()
    assert len(calls) == 2
    trace_id = parent.get_span_context().trace_id
    for span in calls:
        assert span.name == "GET orders"
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == trace_id
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["peer.service"] == "orders"
        assert span.attributes["url.full"].startswith(server.url + "/orders/1")
    # the service's SERVER span will be a child of the CLIENT span, not of the gateway's
    assert sent == {f"00-{trace_id:032x}-{span.context.span_id:016x}" for span in calls}


def test_a_call_that_fails_is_an_error_span_naming_the_reason(pool: ThreadPoolExecutor) -> None:
    with refusing_port() as url:
        outcome = client_for(url, pool).call("GET", "/orders/1")
    assert isinstance(outcome, Failure) and outcome.reason == "unavailable"
    assert "Connection refused" in outcome.detail
    (span,) = client_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "unavailable"


def test_a_connection_broken_before_the_answer_is_an_error(pool: ThreadPoolExecutor) -> None:
    def hang_up(head: bytes) -> tuple[bytes, bool]:
        return b"", True

    with scripted(hang_up) as server:
        outcome = client_for(server.url, pool).call("GET", "/orders/1")
    assert isinstance(outcome, Failure) and outcome.reason == "error"
    assert outcome.detail.startswith("the connection broke")


def test_an_answer_cut_short_is_an_error_and_its_connection_is_not_reused(
    pool: ThreadPoolExecutor,
) -> None:
    calls = []

    def cut_once(head: bytes) -> tuple[bytes, bool]:
        calls.append(head)
        if len(calls) == 1:  # announces 100 bytes, sends 2, hangs up
            return answer(b"{}").replace(b"Length: 2", b"Length: 100"), True
        return answer(b"{}"), False

    with scripted(cut_once) as server:
        client = client_for(server.url, pool)
        broken = client.call("GET", "/orders/1")
        again = client.call("GET", "/orders/1")
    assert isinstance(broken, Failure) and broken.reason == "error"
    assert isinstance(again, Reply)
    assert server.connections == 2


def test_an_answer_that_never_ends_times_out_within_the_deadline(pool: ThreadPoolExecutor) -> None:
    def trickle(head: bytes) -> tuple[bytes, bool]:  # a head, then silence
        return answer(b"{}").replace(b"Length: 2", b"Length: 9"), False

    with scripted(trickle) as server:
        outcome = client_for(server.url, pool, timeout=0.3).call("GET", "/orders/1")
    assert isinstance(outcome, Failure) and outcome.reason == "timeout"


def test_an_answer_over_the_size_limit_is_an_error_and_the_next_call_gets_a_new_connection(
    pool: ThreadPoolExecutor,
) -> None:
    big = json.dumps({"blob": "x" * (MAX_RESPONSE_BYTES + 10)}).encode()
    calls = []

    def big_once(head: bytes) -> tuple[bytes, bool]:
        calls.append(head)
        return answer(big if len(calls) == 1 else b"{}"), False

    with scripted(big_once) as server:
        client = client_for(server.url, pool, timeout=10)
        too_big = client.call("GET", "/orders/1")
        after = client.call("GET", "/orders/2")
    assert isinstance(too_big, Failure) and too_big.reason == "error"
    assert "exceeds" in too_big.detail
    assert isinstance(after, Reply)
    assert server.connections == 2


def test_garbage_and_server_errors_are_failures_not_exceptions(pool: ThreadPoolExecutor) -> None:
    answers = iter(
        [
            answer(b"<html>", content_type="text/html"),
            answer(b'{"title": "Down"}', status="503 Service Unavailable"),
            answer(b"{}", status="500 Internal Server Error"),
            b"NOT HTTP AT ALL\r\n\r\n",
        ]
    )

    def scripted_answers(head: bytes) -> tuple[bytes, bool]:
        data = next(answers)
        return data, data.startswith(b"NOT")

    with scripted(scripted_answers) as server:
        client = client_for(server.url, pool)
        outcomes = [client.call("GET", "/orders/1") for _ in range(4)]
    assert [(o.reason, o.detail.split(":")[0]) for o in outcomes] == [
        ("error", "answered 200 with a body that is not JSON"),
        ("unavailable", "answered 503"),
        ("error", "answered 500"),
        ("error", "the connection broke"),
    ]
