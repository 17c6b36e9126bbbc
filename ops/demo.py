"""``orderflow demo``: drive a realistic scenario over HTTP, then check the saga's consistency.

Unless ``--attach`` is given, the demo starts the system as a child process
(``orderflow standalone`` on a fresh data directory, or ``orderflow up`` when a
broker URL is configured), waits until both services are ready, and stops the
child at the end whatever happens. The scenario only touches customers named
after a fresh run id, so it can run again against the same databases:

1. about a quarter of the customers get a low credit limit, so some of their
   orders are cancelled as ``credit_rejected``;
2. 8 client threads place the orders; every 10th request is sent again with the
   same Idempotency-Key and must replay the first response, creating nothing;
3. once no order is pending, about a third of the confirmed orders are paid and
   a sixth cancelled (their invoices must end void); cancelling a paid order must
   answer 409 and paying the wrong amount 422;
4. the final state is read back over HTTP and checked. The summary says PASS or
   FAIL per check; the exit status is 0 only if every check passed.

Only the standard library is used: the demo is a client like any other.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ops.settings import Settings

CLIENT_THREADS = 8
REQUEST_TIMEOUT = 10.0  # seconds, per HTTP request
READY_TIMEOUT = 60.0  # seconds for a started system to answer GET /ready
STOP_TIMEOUT = 30.0  # seconds between SIGINT and SIGKILL
POLL_INTERVAL = 0.25  # seconds between two looks at a condition we wait for
PAGE_LIMIT = 10  # small pages, so every listing walks next_cursor
REPLAY_EVERY = 10
LOW_CREDIT_LIMIT = "50.00"
CURRENCY = "EUR"
LOG_TAIL_LINES = 40
SHOWN_OFFENDERS = 5
ORDER_STATUSES = ("pending", "confirmed", "paid", "cancelled")
INVOICE_STATUSES = ("issued", "paid", "void")
LIVE_INVOICE = frozenset({"issued", "paid"})

Item = dict[str, Any]  # an order or an invoice as the API shows it
T = TypeVar("T")


# --------------------------------------------------------------------------- HTTP


class Reply(NamedTuple):
    """One HTTP answer: status (0 when none came), headers, and JSON body (None if not JSON)."""

    status: int
    headers: Message
    body: Any


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the two services."""

    orders: str
    invoices: str

    @classmethod
    def of(cls, settings: Settings) -> Endpoints:
        """The services of ``settings`` (host and ports)."""
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        return cls(
            f"http://{host}:{settings.orders_port}", f"http://{host}:{settings.invoices_port}"
        )


def call(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> Reply:
    """Send one request with a JSON body (if any); never raises.

    Any HTTP status comes back as a :class:`Reply`; a transport failure (refused,
    reset, timed out after ``REQUEST_TIMEOUT``) comes back with status 0.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http:// only
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
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


def collect(base: str, path: str, **query: object) -> list[Item] | None:
    """Every item of a listing, page by page through ``next_cursor``; None on any error."""
    items: list[Item] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        reply = call("GET", url(base, path, **query, limit=PAGE_LIMIT, cursor=cursor))
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


def poll_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Evaluate ``condition`` every ``POLL_INTERVAL`` until it holds (True) or the
    monotonic ``deadline`` passes (False)."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


# --------------------------------------------------------------- the child system


def busy_ports(settings: Settings) -> list[int]:
    """The service ports on which something already accepts connections."""
    busy = []
    for port in (settings.orders_port, settings.invoices_port):
        with contextlib.suppress(OSError), socket.create_connection((settings.host, port), 1.0):
            busy.append(port)
    return busy


def child_command(settings: Settings) -> list[str]:
    """``orderflow up`` when a broker is configured, else ``orderflow standalone``."""
    command = "up" if settings.distributed else "standalone"
    return [sys.executable, "-m", "ops.cli", command]


def child_environment(settings: Settings, workdir: Path) -> dict[str, str]:
    """Our environment plus the settings; standalone gets ``workdir`` as a fresh data dir."""
    env = {**os.environ, **settings.to_env()}
    if not settings.distributed:
        env["ORDERFLOW_DATA_DIR"] = str(workdir)
    return env


def start_system(settings: Settings, workdir: Path) -> subprocess.Popen[bytes]:
    """Start the system in its own session, its output going to ``workdir/system.log``."""
    with (workdir / "system.log").open("wb") as log:
        return subprocess.Popen(
            child_command(settings),
            env=child_environment(settings, workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops the child
        )


def wait_ready(endpoints: Endpoints, child: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once GET /ready has answered 200 on both services; False if the child
    exits first or ``timeout`` seconds pass."""
    waiting = {endpoints.orders, endpoints.invoices}

    def ready_or_dead() -> bool:
        waiting.difference_update(
            {base for base in waiting if call("GET", f"{base}/ready").status == 200}
        )
        return not waiting or child.poll() is not None

    return poll_until(ready_or_dead, time.monotonic() + timeout) and not waiting


def stop_system(child: subprocess.Popen[bytes]) -> int:
    """Stop the child: SIGINT, up to ``STOP_TIMEOUT`` seconds, then SIGKILL to its whole
    process group. Returns its exit status."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        return child.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"the system did not stop within {STOP_TIMEOUT:.0f} s; killing it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        return child.wait()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the log file (empty if it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def attached(endpoints: Endpoints, args: argparse.Namespace) -> int:
    """Run the scenario against a system that is already running, if both services are ready."""
    for base in (endpoints.orders, endpoints.invoices):
        if (reply := call("GET", f"{base}/ready")).status != 200:
            print(
                f"orderflow demo: GET {base}/ready: {describe(reply)}; "
                "start the system first, or leave out --attach",
                file=sys.stderr,
            )
            return 1
    return run_scenario(endpoints, args, "attached")


def with_system(settings: Settings, endpoints: Endpoints, args: argparse.Namespace) -> int:
    """Start the system, run the scenario once it is ready, and always stop the system."""
    if busy := busy_ports(settings):
        print(
            f"orderflow demo: port(s) {', '.join(map(str, busy))} on {settings.host} are "
            "in use; stop what listens there, or use --attach to drive it",
            file=sys.stderr,
        )
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-demo-"))
    log = workdir / "system.log"
    child = start_system(settings, workdir)
    print(
        f"started `orderflow {child_command(settings)[-1]}` (pid {child.pid}); its log: {log}",
        flush=True,
    )
    try:
        if not wait_ready(endpoints, child, READY_TIMEOUT):
            state = "exited" if child.poll() is not None else "was not ready in time"
            print(
                f"orderflow demo: the system {state} (waited up to {READY_TIMEOUT:.0f} s); "
                f"end of {log}:\n{log_tail(log)}",
                file=sys.stderr,
            )
            return 1
        mode = "distributed" if settings.distributed else "standalone"
        return run_scenario(endpoints, args, mode)
    finally:
        print(f"system stopped (exit status {stop_system(child)})", flush=True)


# ------------------------------------------------------------------- the scenario


@dataclass
class Placement:
    """One ``POST /orders``: the request, its answer, and the replay's answer if one was sent."""

    request: Item
    reply: Reply
    replay: Reply | None = None

    @property
    def order_id(self) -> str | None:
        """The id of the order created, if the answer was 201 with an order."""
        body = self.reply.body
        return body.get("id") if self.reply.status == 201 and isinstance(body, dict) else None


@dataclass
class Run:
    """What the scenario did so far; the checks and the summary read it."""

    endpoints: Endpoints
    run_id: str
    customers: list[str]
    low_credit: list[str]
    placements: list[Placement] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # scenario requests refused
    latencies_ms: list[float] = field(default_factory=list)
    paid_ids: list[str] = field(default_factory=list)
    cancelled_ids: list[str] = field(default_factory=list)  # cancelled by the customer
    refusals: list[str] = field(default_factory=list)  # the 409 / 422 check's offenders
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One consistency check and the offenders it found (none means PASS)."""

    name: str
    offenders: list[str]


def new_run(endpoints: Endpoints, customers: int) -> Run:
    """A run with a fresh id; the first quarter of its customers get a low credit limit."""
    run_id = uuid.uuid4().hex[:8]
    names = [f"demo-{run_id}-c{i}" for i in range(customers)]
    return Run(endpoints, run_id, names, names[: customers // 4])


@contextlib.contextmanager
def timed(run: Run, phase: str) -> Iterator[None]:
    """Record how long the ``with`` body took as ``run.timings[phase]`` (seconds)."""
    started = time.monotonic()
    try:
        yield
    finally:
        run.timings[phase] = time.monotonic() - started


def set_credit_limits(run: Run) -> None:
    """PUT the low credit limit on the run's low-credit customers."""
    for customer in run.low_credit:
        reply = call(
            "PUT",
            f"{run.endpoints.invoices}/accounts/{customer}",
            {"credit_limit": LOW_CREDIT_LIMIT},
        )
        if reply.status != 200:
            run.unexpected.append(f"PUT /accounts/{customer}: {describe(reply)}")


def money(minor: int) -> str:
    """Minor units as a decimal string: 1999 -> "19.99"."""
    return f"{minor // 100}.{minor % 100:02d}"


def order_request(rng: random.Random, customer_id: str) -> Item:
    """A ``POST /orders`` body of 1 to 3 lines, quantities 1..5, prices 1.00..40.00."""
    lines = [
        {
            "sku": f"SKU-{rng.randint(1, 50):03d}",
            "quantity": rng.randint(1, 5),
            "unit_price": money(rng.randint(100, 4000)),
        }
        for _ in range(rng.randint(1, 3))
    ]
    return {"customer_id": customer_id, "currency": CURRENCY, "lines": lines}


def place(endpoints: Endpoints, index: int, request: Item) -> Placement:
    """Place one order; the ``REPLAY_EVERY``-th ones are sent twice with the same key."""
    headers = idempotency_key()
    placement = Placement(request, call("POST", f"{endpoints.orders}/orders", request, headers))
    if (index + 1) % REPLAY_EVERY == 0:
        placement.replay = call("POST", f"{endpoints.orders}/orders", request, headers)
    return placement


def place_orders(run: Run, count: int) -> None:
    """Place ``count`` orders round-robin over the customers from ``CLIENT_THREADS`` threads."""
    rng = random.Random(run.run_id)  # noqa: S311 - demo data, not security
    requests = [order_request(rng, run.customers[i % len(run.customers)]) for i in range(count)]
    run.placements = parallel(place, [run.endpoints] * count, range(count), requests)
    for placement in run.placements:
        if placement.order_id is None:
            run.unexpected.append(f"POST /orders: {describe(placement.reply)}")


def run_orders(run: Run, status: str | None = None) -> list[Item] | None:
    """Every order of the run's customers (optionally in one status); None on any error."""
    pages = parallel(
        lambda customer: collect(
            run.endpoints.orders, "/orders", customer_id=customer, status=status
        ),
        run.customers,
    )
    if any(page is None for page in pages):
        return None
    return [order for page in pages for order in page or []]


def wait_until_settled(run: Run, timeout: float) -> list[Item] | None:
    """Wait until none of the run's orders is pending (or ``timeout`` passes); then return
    them all and record the saga latency of the settled ones."""
    settled = poll_until(lambda: run_orders(run, "pending") == [], time.monotonic() + timeout)
    orders = run_orders(run)
    if not settled:
        print(f"  still pending after {timeout:g} s; going on to report it", flush=True)
    if orders is not None:
        run.latencies_ms = [
            saga_latency_ms(order)
            for order in orders
            if order["status"] in ("confirmed", "cancelled")
        ]
    return orders


def saga_latency_ms(order: Item) -> float:
    """Milliseconds from the order's creation to its last update (here: its settlement)."""
    created = dt.datetime.fromisoformat(order["created_at"])
    updated = dt.datetime.fromisoformat(order["updated_at"])
    return (updated - created).total_seconds() * 1000


def choose_actions(orders: list[Item]) -> tuple[list[Item], list[Item], list[Item]]:
    """Split the confirmed orders, oldest first: every third to pay, every sixth (offset by
    one) to cancel, the rest to leave issued. Returns (to_pay, to_cancel, untouched)."""
    confirmed = sorted(
        (o for o in orders if o["status"] == "confirmed"), key=lambda o: (o["created_at"], o["id"])
    )
    to_pay = confirmed[0::3]
    to_cancel = confirmed[1::6]
    chosen = {o["id"] for o in to_pay + to_cancel}
    return to_pay, to_cancel, [o for o in confirmed if o["id"] not in chosen]


def pay(endpoints: Endpoints, order: Item, amount: str | None = None) -> Reply:
    """Pay the order's invoice (found by ``GET /invoices?order_id=``) with ``amount``, or
    with its total; status 0 if the order has not exactly one invoice."""
    invoices = collect(endpoints.invoices, "/invoices", order_id=order["id"])
    if invoices is None or len(invoices) != 1:
        count = "?" if invoices is None else len(invoices)
        return Reply(0, Message(), {"error": f"order has {count} invoices, expected 1"})
    invoice = invoices[0]
    return call(
        "POST",
        f"{endpoints.invoices}/invoices/{invoice['id']}/payments",
        {"amount": amount or invoice["total"]},
        idempotency_key(),
    )


def cancel(endpoints: Endpoints, order_id: str) -> Reply:
    """``POST /orders/{id}/cancel`` without a body, under a fresh Idempotency-Key."""
    return call("POST", f"{endpoints.orders}/orders/{order_id}/cancel", None, idempotency_key())


def pay_and_cancel(run: Run, to_pay: list[Item], to_cancel: list[Item]) -> None:
    """Pay the chosen orders, then cancel the others (``CLIENT_THREADS`` requests at a time);
    record which ones were accepted."""
    paid = parallel(lambda order: pay(run.endpoints, order), to_pay)
    cancelled = parallel(lambda order: cancel(run.endpoints, order["id"]), to_cancel)
    for order, reply in zip(to_pay, paid, strict=True):
        if reply.status == 200:
            run.paid_ids.append(order["id"])
        else:
            run.unexpected.append(f"pay order {order['id']}: {describe(reply)}")
    for order, reply in zip(to_cancel, cancelled, strict=True):
        if reply.status == 200:
            run.cancelled_ids.append(order["id"])
        else:
            run.unexpected.append(f"cancel order {order['id']}: {describe(reply)}")


def order_status(endpoints: Endpoints, order_id: str) -> str | None:
    """The order's status as ``GET /orders/{id}`` shows it; None if it did not answer 200."""
    reply = call("GET", f"{endpoints.orders}/orders/{order_id}")
    return reply.body.get("status") if reply.status == 200 and reply.body else None


def live_invoices(endpoints: Endpoints, order_id: str) -> int | None:
    """How many issued or paid invoices the order has; None if the listing failed."""
    invoices = collect(endpoints.invoices, "/invoices", order_id=order_id)
    return None if invoices is None else sum(i["status"] in LIVE_INVOICE for i in invoices)


def wait_for_effects(run: Run, cancelled: list[str], timeout: float) -> bool:
    """Wait until every paid order shows ``paid`` and none of the ``cancelled`` orders has
    a live invoice; False if ``timeout`` passes first."""
    paid_left, cancelled_left = set(run.paid_ids), set(cancelled)

    def done() -> bool:
        paid_left.difference_update(
            only(lambda i: order_status(run.endpoints, i) == "paid", paid_left)
        )
        cancelled_left.difference_update(
            only(lambda i: live_invoices(run.endpoints, i) == 0, cancelled_left)
        )
        return not paid_left and not cancelled_left

    return poll_until(done, time.monotonic() + timeout)


def only(predicate: Callable[[str], bool], ids: set[str]) -> set[str]:
    """The ids for which ``predicate`` holds, evaluated concurrently."""
    ordered = sorted(ids)
    return {i for i, keep in zip(ordered, parallel(predicate, ordered), strict=True) if keep}


def expected_refusals(run: Run, untouched: list[Item]) -> None:
    """Cancelling a paid order must answer 409, paying an issued invoice the wrong amount
    422; each other answer, or a missing candidate, is recorded as an offender."""
    paid = next((i for i in run.paid_ids if order_status(run.endpoints, i) == "paid"), None)
    if paid is None:
        run.refusals.append("no order showing paid to try cancelling")
    elif (reply := cancel(run.endpoints, paid)).status != 409:
        run.refusals.append(f"cancelling paid order {paid}: {describe(reply)}, expected 409")
    if not untouched:
        run.refusals.append("no issued invoice to try paying the wrong amount")
        return
    order = untouched[0]
    wrong = str(Decimal(order["total"]) + Decimal("0.01"))
    if (reply := pay(run.endpoints, order, wrong)).status != 422:
        run.refusals.append(
            f"paying {wrong} for order {order['id']} (total {order['total']}): "
            f"{describe(reply)}, expected 422"
        )


def describe(reply: Reply) -> str:
    """A short account of an answer: status and the problem's detail or error."""
    body = reply.body if isinstance(reply.body, dict) else {}
    detail = body.get("detail") or body.get("error") or body.get("title") or ""
    return f"{reply.status or 'no answer'} {detail}".strip()


# ------------------------------------------------------------------- final checks


@dataclass(frozen=True)
class FinalState:
    """The run's orders and, for each, its invoices (None where they could not be read)."""

    orders: list[Item]
    invoices: dict[str, list[Item] | None]

    def all_invoices(self) -> list[Item]:
        """Every invoice of the run's orders."""
        return [i for invoices in self.invoices.values() for i in invoices or []]


def read_final_state(run: Run) -> FinalState | None:
    """Read every order of the run and each one's invoices; None if the orders cannot be read."""
    orders = run_orders(run)
    if orders is None:
        return None
    ids = [order["id"] for order in orders]
    invoices = parallel(lambda i: collect(run.endpoints.invoices, "/invoices", order_id=i), ids)
    return FinalState(orders, dict(zip(ids, invoices, strict=True)))


def check_finished(run: Run, state: FinalState) -> list[str]:
    """Orders still pending, and placed orders the listing does not show."""
    listed = {order["id"] for order in state.orders}
    missing = [
        f"order {p.order_id} is not listed"
        for p in run.placements
        if p.order_id and p.order_id not in listed
    ]
    return missing + [
        f"order {o['id']} is pending" for o in state.orders if o["status"] == "pending"
    ]


def check_one_invoice(state: FinalState) -> list[str]:
    """Confirmed or paid orders that have not exactly one invoice."""
    offenders = []
    for order in state.orders:
        if order["status"] in ("confirmed", "paid"):
            invoices = state.invoices[order["id"]]
            if invoices is None or len(invoices) != 1:
                count = "unreadable" if invoices is None else str(len(invoices))
                offenders.append(f"{order['status']} order {order['id']}: {count} invoices")
    return offenders


def check_no_live_invoice(state: FinalState) -> list[str]:
    """Cancelled orders with an issued or paid invoice (or unreadable invoices)."""
    offenders = []
    for order in state.orders:
        if order["status"] == "cancelled":
            invoices = state.invoices[order["id"]]
            live = (
                ["unreadable"]
                if invoices is None
                else [
                    f"{i['number']} {i['status']}" for i in invoices if i["status"] in LIVE_INVOICE
                ]
            )
            if live:
                offenders.append(f"cancelled order {order['id']}: {', '.join(live)}")
    return offenders


def check_invoices_match(state: FinalState) -> list[str]:
    """Invoices whose total (as a Decimal), currency or customer differ from their order's."""
    offenders = []
    for order in state.orders:
        for invoice in state.invoices[order["id"]] or []:
            expected = (Decimal(order["total"]), order["currency"], order["customer_id"])
            actual = (Decimal(invoice["total"]), invoice["currency"], invoice["customer_id"])
            if actual != expected:
                offenders.append(
                    f"invoice {invoice['number']} {invoice['total']} "
                    f"{invoice['currency']} for order {order['id']} "
                    f"{order['total']} {order['currency']}"
                )
    return offenders


def check_effects(run: Run, state: FinalState) -> list[str]:
    """Orders the demo paid that do not show paid, and orders it cancelled that are not
    cancelled as ``customer_cancelled`` with exactly one invoice, void."""
    by_id = {order["id"]: order for order in state.orders}
    offenders = [
        f"paid order {i} shows {by_id.get(i, {}).get('status')}"
        for i in run.paid_ids
        if by_id.get(i, {}).get("status") != "paid"
    ]
    for order_id in run.cancelled_ids:
        order = by_id.get(order_id, {})
        invoices = [i["status"] for i in state.invoices.get(order_id) or []]
        shown = (order.get("status"), order.get("cancel_reason"), invoices)
        if shown != ("cancelled", "customer_cancelled", ["void"]):
            offenders.append(
                f"cancelled order {order_id} shows {shown}, expected "
                "cancelled, customer_cancelled, one void invoice"
            )
    return offenders


def replay_problem(placement: Placement) -> str | None:
    """Why a replay did not return the first response, or None if it did."""
    first, again = placement.reply, placement.replay
    if again is None:
        return None
    name = f"replay of order {placement.order_id}"
    if (again.status, first.status) != (201, 201):
        return f"{name}: first {first.status}, replay {describe(again)}, expected 201 twice"
    if again.body != first.body:
        return f"{name}: the body differs from the first response"
    if again.headers.get("Idempotent-Replayed") != "true":
        return f"{name}: no Idempotent-Replayed: true header"
    if again.headers.get("Location") != first.headers.get("Location"):
        return f"{name}: Location differs"
    return None


def check_replays(run: Run, state: FinalState) -> list[str]:
    """Replays that differ from their first response, and orders nobody placed (a replay
    that created a second order would show up as one)."""
    offenders = [problem for p in run.placements if (problem := replay_problem(p))]
    placed = {p.order_id for p in run.placements if p.order_id}
    return offenders + [
        f"order {o['id']} was never placed by this run"
        for o in state.orders
        if o["id"] not in placed
    ]


def consistency_checks(run: Run, state: FinalState) -> list[Check]:
    """Every check of the final state, in the order the summary shows them."""
    return [
        Check("scenario requests accepted", run.unexpected),
        Check("every order finished (no pending)", check_finished(run, state)),
        Check("one invoice per confirmed or paid order", check_one_invoice(state)),
        Check("cancelled orders have no live invoice", check_no_live_invoice(state)),
        Check("invoice total and currency equal the order's", check_invoices_match(state)),
        Check("payments and cancellations took effect", check_effects(run, state)),
        Check("idempotent replays: first response, no extra order", check_replays(run, state)),
        Check("expected 409 (cancel paid) and 422 (wrong amount)", run.refusals),
    ]


# ------------------------------------------------------------------------ summary


def order_rows(orders: list[Item]) -> list[tuple[str, int]]:
    """Orders per status (every known status, even at 0), then cancellations per reason."""
    statuses = Counter(order["status"] for order in orders)
    reasons = Counter(o["cancel_reason"] or "?" for o in orders if o["status"] == "cancelled")
    rows = [(status, statuses.pop(status, 0)) for status in ORDER_STATUSES]
    rows += sorted(statuses.items())  # a status this demo does not know about
    return rows + [(f"  {reason}", count) for reason, count in sorted(reasons.items())]


def invoice_rows(state: FinalState) -> list[tuple[str, int]]:
    """Invoices of the run per status (every known status, even at 0)."""
    statuses = Counter(invoice["status"] for invoice in state.all_invoices())
    rows = [(status, statuses.pop(status, 0)) for status in INVOICE_STATUSES]
    return rows + sorted(statuses.items())


def percentile(values: list[float], pct: int) -> float | None:
    """The ``pct``-th percentile of ``values`` (None if there are none)."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def print_table(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """A titled block of label / right-aligned value rows."""
    print(title)
    for label, value in rows:
        print(f"  {label:<34}{value!s:>12}")


def print_checks(checks: list[Check]) -> None:
    """The checks table, with the first offenders of every failed check below it."""
    print(f"{'Consistency checks':<52}{'result':>8}{'offenders':>11}")
    for check in checks:
        result = "FAIL" if check.offenders else "PASS"
        print(f"  {check.name:<50}{result:>8}{len(check.offenders):>11}")
    for check in checks:
        if check.offenders:
            print(f"FAIL {check.name}:")
            for offender in check.offenders[:SHOWN_OFFENDERS]:
                print(f"    {offender}")
            if len(check.offenders) > SHOWN_OFFENDERS:
                print(f"    ... and {len(check.offenders) - SHOWN_OFFENDERS} more")


def print_summary(run: Run, state: FinalState, checks: list[Check], mode: str) -> None:
    """The readable end of the demo: counts, latency, replays, timings and checks."""
    p50, p95 = (percentile(run.latencies_ms, pct) for pct in (50, 95))
    replays = [p for p in run.placements if p.replay is not None]
    verified = sum(replay_problem(p) is None for p in replays)
    print(
        f"\n== orderflow demo, run {run.run_id} ({mode}): {len(run.placements)} orders from "
        f"{len(run.customers)} customers, {len(run.low_credit)} with credit limit "
        f"{LOW_CREDIT_LIMIT}"
    )
    print_table("Orders by status", order_rows(state.orders))
    print_table("Invoices by status", invoice_rows(state))
    print_table(
        f"Saga latency (created -> settled, {len(run.latencies_ms)} orders)",
        [
            (name, "n/a" if value is None else f"{value:.1f} ms")
            for name, value in (("p50", p50), ("p95", p95))
        ],
    )
    print_table("Idempotent replays", [("verified", f"{verified} of {len(replays)}")])
    print_table("Timings", [(phase, f"{seconds:.1f} s") for phase, seconds in run.timings.items()])
    print_checks(checks)
    print(f"== {'PASS' if all(not c.offenders for c in checks) else 'FAIL'}", flush=True)


# ---------------------------------------------------------------------- the run


def run_scenario(endpoints: Endpoints, args: argparse.Namespace, mode: str) -> int:
    """Drive the whole scenario, print the summary; 0 only if every check passed."""
    started = time.monotonic()
    run = new_run(endpoints, args.customers)
    print(f"run {run.run_id}: placing {args.orders} orders ...", flush=True)
    with timed(run, "placing orders"):
        set_credit_limits(run)
        place_orders(run, args.orders)
    print("waiting until no order is pending ...", flush=True)
    with timed(run, "sagas settling"):
        orders = wait_until_settled(run, args.timeout) or []
    to_pay, to_cancel, untouched = choose_actions(orders)
    print(f"paying {len(to_pay)} and cancelling {len(to_cancel)} confirmed orders ...", flush=True)
    with timed(run, "paying and cancelling"):
        pay_and_cancel(run, to_pay, to_cancel)
    cancelled = run.cancelled_ids + [o["id"] for o in orders if o["status"] == "cancelled"]
    with timed(run, "payments and voids applied"):
        if not wait_for_effects(run, cancelled, args.timeout):
            print(f"  not all applied after {args.timeout:g} s; going on to report it")
    expected_refusals(run, untouched)
    state = read_final_state(run)
    if state is None:
        print("orderflow demo: could not read the run's orders back", file=sys.stderr)
        return 1
    run.timings["total"] = time.monotonic() - started
    checks = consistency_checks(run, state)
    print_summary(run, state, checks, mode)
    return 0 if all(not check.offenders for check in checks) else 1


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``orderflow demo``: 0 if every check passed, 1 if one failed or the system did not
    come up, 2 for unusable arguments, 130 if interrupted."""
    if args.orders < 1 or args.customers < 1 or args.timeout <= 0:
        print(
            "orderflow demo: --orders, --customers and --timeout must be positive", file=sys.stderr
        )
        return 2
    endpoints = Endpoints.of(settings)
    try:
        if args.attach:
            return attached(endpoints, args)
        return with_system(settings, endpoints, args)
    except KeyboardInterrupt:
        print("orderflow demo: interrupted", file=sys.stderr)
        return 130
