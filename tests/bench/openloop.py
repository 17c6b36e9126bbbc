"""Open-loop HTTP load: orders sent at a fixed arrival rate, whatever the server does.

Why open loop: the closed-loop client (:mod:`tests.bench.client`) sends an
order only when an earlier one was answered, so a server that stalls for a
second also stops the arrivals for a second, and the orders that would have
arrived meanwhile are never measured (coordinated omission). Here order ``i``
of a phase is scheduled at ``t0 + i / rate`` and sent then, on an idle
keep-alive connection or a new one, however many are still unanswered.

Latency is measured from the *scheduled* time to the end of reading the
response body, so time an order spent waiting for the generator (a late
event loop, ``max_in_flight`` reached) or for the server counts:
``latency = start_lag + service_time``. A send that had to wait for a free
slot (``max_in_flight`` unanswered) or started more than ``late_after``
seconds after its schedule is counted in ``late_starts``, and
``max_start_lag`` is the worst lag; with both near zero the offered rate was
actually achieved. Late sends go out as soon as they can, so the phase still
sends ``count`` orders, but the generator never slows down silently.

How: one asyncio event loop in the calling thread, stdlib only, a minimal
HTTP/1.1 client (request, status line, headers, ``Content-Length`` body;
chunked answers are not supported), a LIFO pool of idle keep-alive
connections and a new connection whenever none is idle (an idle one the
server closed meanwhile is noticed and dropped). A connection is dropped
after ``Connection: close``, an HTTP/1.0 answer without keep-alive, an error
or a timeout. ``timeout`` bounds each request from its actual start (connect
included). Failed requests are samples with status None and the exception
class name, as in the closed-loop client; they are not retried.

Cost, in CPU of the generator's thread per request (Python 3.11 on the
2-core benchmark machine, against a trivial keep-alive server in another
process, several 10-second runs): 0.18-0.22 ms at 1000 requests/s (about
20 % of one core), 0.23 ms at 500/s, 0.3-0.35 ms at 100/s, 0.5 ms at 50/s:
at low rates each send is a wake-up of its own. Against orderflow at 50/s it
was 0.6 ms (its answers are larger). Each phase reports its own figure in
``client_cpu_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.bench.client import LoadResult, Sample, order_body, order_headers

LATE_AFTER = 0.010  # seconds a send may start after its schedule before it counts as late


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client understands it."""


@dataclass
class _Answer:
    status: int
    body: bytes
    replayed: bool
    reusable: bool


@dataclass
class _Phase:
    """What one phase shares between its scheduler and its requests."""

    host: str
    port: int
    key_prefix: str
    tokens: Mapping[str, str]
    timeout: float
    t0: float
    rate: float
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    opened: int = 0
    samples: list[Sample] = field(default_factory=list)
    last_end: float = 0.0
    late: int = 0  # sends that waited for a slot or started more than late_after late
    max_lag: float = 0.0
    late_after: float = LATE_AFTER


def orders_for(rate: float, seconds: float) -> int:
    """The ``count`` of a phase of ``seconds`` at ``rate`` orders per second:
    ``run_open_loop(..., rate=rate, count=orders_for(rate, seconds))``."""
    return int(rate * seconds + 1e-9)


def run_open_loop(
    host: str,
    port: int,
    *,
    rate: float,
    count: int,
    first: int,
    key_prefix: str,
    tokens: Mapping[str, str],
    timeout: float,
    max_in_flight: int = 512,
    late_after: float = LATE_AFTER,
) -> LoadResult:
    """Post orders ``first .. first + count - 1``, order ``first + i`` scheduled at
    ``t0 + i / rate``; returns every sample (by index) and the phase's window, from the
    first scheduled send to the last answer. At most ``max_in_flight`` requests are
    unanswered at once: a send that has to wait for a slot starts late and is counted."""
    if rate <= 0 or count < 0 or max_in_flight < 1:
        raise ValueError("rate and max_in_flight must be positive, count not negative")
    return asyncio.run(
        _run(host, port, rate, count, first, key_prefix, tokens, timeout, max_in_flight, late_after)
    )


async def _run(
    host: str,
    port: int,
    rate: float,
    count: int,
    first: int,
    key_prefix: str,
    tokens: Mapping[str, str],
    timeout: float,
    max_in_flight: int,
    late_after: float,
) -> LoadResult:
    """The scheduler: start each request at its time, or as soon after as it can."""
    loop = asyncio.get_running_loop()
    cpu_before = time.thread_time()
    t0 = loop.time()
    wall_started = time.time()
    phase = _Phase(host, port, key_prefix, tokens, timeout, t0, rate, last_end=t0)
    phase.late_after = late_after
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    for offset in range(count):
        delay = t0 + offset / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        waited = slots.locked()  # max_in_flight unanswered: this send waits for one
        await slots.acquire()
        task = loop.create_task(_request(phase, first + offset, offset, slots, waited))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.wait(set(tasks))
    await _close_idle(phase)
    return LoadResult(
        samples=sorted(phase.samples, key=lambda sample: sample.index),
        seconds=phase.last_end - t0,
        finished=time.monotonic(),
        wall_started=wall_started,
        wall_finished=time.time(),
        offered_rate=rate,
        late_starts=phase.late,
        max_start_lag=phase.max_lag,
        connections_opened=phase.opened,
        client_cpu_seconds=time.thread_time() - cpu_before,
    )


async def _request(
    phase: _Phase, index: int, offset: int, slots: asyncio.Semaphore, waited: bool
) -> None:
    """Send order ``index`` and record its sample; frees its slot when done."""
    loop = asyncio.get_running_loop()
    scheduled = offset / phase.rate
    started = loop.time()
    lag = started - phase.t0 - scheduled
    phase.max_lag = max(phase.max_lag, lag)
    if waited or lag > phase.late_after:
        phase.late += 1
    status: int | None = None
    order_id = problem = None
    replayed = False
    try:
        async with asyncio.timeout(phase.timeout):
            answer = await _exchange(phase, _request_bytes(phase, index))
        status, replayed = answer.status, answer.replayed
        order_id, problem = _outcome(answer)
    except Exception as exc:  # any failure is a sample: TimeoutError, ConnectionRefusedError...
        status, problem = None, type(exc).__name__
    finally:
        slots.release()
    end = loop.time()
    phase.last_end = max(phase.last_end, end)
    phase.samples.append(
        Sample(
            index,
            status,
            problem,
            end - phase.t0 - scheduled,
            order_id,
            replayed,
            scheduled,
            lag,
            end - started,
        )
    )


def _request_bytes(phase: _Phase, index: int) -> bytes:
    """``POST /orders`` of order ``index`` on the wire, headers as the closed-loop client's."""
    body = order_body(index)
    headers = order_headers(index, phase.key_prefix, phase.tokens)
    lines = [f"POST /orders HTTP/1.1\r\nHost: {phase.host}:{phase.port}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "".join(lines).encode("latin-1") + body


async def _exchange(phase: _Phase, request: bytes) -> _Answer:
    """Write ``request`` on an idle connection (or a new one) and read the whole answer.

    The connection goes back to the idle pool only when the answer was complete
    and the server keeps it alive; on any failure it is closed.
    """
    reader, writer = await _connection(phase)
    try:
        writer.write(request)
        answer = await _read_answer(reader)
    except BaseException:  # a timeout's cancellation too: the stream is in an unknown state
        writer.close()
        raise
    if answer.reusable:
        phase.idle.append((reader, writer))
    else:
        writer.close()
    return answer


async def _connection(phase: _Phase) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The most recently used idle connection the server has not closed, or a new one."""
    while phase.idle:
        reader, writer = phase.idle.pop()
        if not reader.at_eof() and not writer.is_closing():
            return reader, writer
        writer.close()
    phase.opened += 1
    return await asyncio.open_connection(phase.host, phase.port)


async def _close_idle(phase: _Phase) -> None:
    """Close the pooled connections and wait until they are closed."""
    writers = [writer for _reader, writer in phase.idle]
    phase.idle.clear()
    for writer in writers:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)


async def _read_answer(reader: asyncio.StreamReader) -> _Answer:
    """Status line, headers and ``Content-Length`` body of one HTTP/1.x answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"identity").lower() != b"identity":
        raise ProtocolError("chunked answers are not supported")
    connection = headers.get(b"connection", b"").lower()
    keep_alive = connection != b"close" and (version != b"HTTP/1.0" or connection == b"keep-alive")
    length = headers.get(b"content-length")
    if length is None:
        body = await reader.read()  # delimited by the end of the connection
        keep_alive = False
    else:
        body = await reader.readexactly(int(length))
    replayed = headers.get(b"idempotent-replayed") == b"true"
    return _Answer(int(rest[:3]), body, replayed, keep_alive)


def _outcome(answer: _Answer) -> tuple[str | None, str | None]:
    """``(order id, None)`` for a 201, ``(None, problem summary)`` otherwise."""
    if answer.status == 201:
        try:
            return str(json.loads(answer.body)["id"]), None
        except (ValueError, KeyError, TypeError):
            raise ProtocolError("a 201 answer without an order id") from None
    try:
        problem = json.loads(answer.body)
    except ValueError:
        return None, answer.body[:120].decode("utf-8", "replace")
    if not isinstance(problem, dict):
        return None, str(problem)[:120]
    return None, f"{problem.get('title', '')}: {problem.get('detail', '')}"[:200]
