"""The demo's scenario: the run's record and its steps, from credit limits to payments."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from ops.demo.client import (
    Endpoints,
    Item,
    Reply,
    call,
    cancel,
    collect,
    describe,
    idempotency_key,
    live_invoices,
    only,
    order_status,
    parallel,
    pay,
    poll_until,
)

REPLAY_EVERY = 10
LOW_CREDIT_LIMIT = "50.00"
CURRENCY = "EUR"


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
