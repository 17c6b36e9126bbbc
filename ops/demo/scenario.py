"""The demo's scenario steps, from credit limits to payments, each as the right caller."""

from __future__ import annotations

import datetime as dt
import random
import time

from ops.demo.calls import cancel, live_invoices, order_status, pay
from ops.demo.client import (
    Endpoints,
    Item,
    call,
    collect,
    describe,
    idempotency_key,
    only,
    parallel,
    poll_until,
)
from ops.demo.record import Placement, Run

REPLAY_EVERY = 10
LOW_CREDIT_LIMIT = "50.00"
CURRENCY = "EUR"


def set_credit_limits(run: Run) -> None:
    """As the operator, PUT the low credit limit on the run's low-credit customers."""
    for customer in run.low_credit:
        reply = call(
            "PUT",
            f"{run.endpoints.invoices}/accounts/{customer}",
            {"credit_limit": LOW_CREDIT_LIMIT},
            token=run.tokens.operator,
        )
        if reply.status != 200:
            run.unexpected.append(f"PUT /accounts/{customer}: {describe(reply)}")


def money(minor: int) -> str:
    """Minor units as a decimal string: 1999 -> "19.99"."""
    return f"{minor // 100}.{minor % 100:02d}"


def order_request(rng: random.Random) -> Item:
    """A ``POST /orders`` body of 1 to 3 lines, quantities 1..5, prices 1.00..40.00 (no
    customer: the token names it)."""
    lines = [
        {
            "sku": f"SKU-{rng.randint(1, 50):03d}",
            "quantity": rng.randint(1, 5),
            "unit_price": money(rng.randint(100, 4000)),
        }
        for _ in range(rng.randint(1, 3))
    ]
    return {"currency": CURRENCY, "lines": lines}


def place(endpoints: Endpoints, index: int, customer: str, token: str, request: Item) -> Placement:
    """Place one order as ``customer``; the ``REPLAY_EVERY``-th ones are sent twice with
    the same key."""
    headers = idempotency_key()
    orders = f"{endpoints.orders}/orders"
    placement = Placement(customer, request, call("POST", orders, request, headers, token=token))
    if (index + 1) % REPLAY_EVERY == 0:
        placement.replay = call("POST", orders, request, headers, token=token)
    return placement


def place_orders(run: Run, count: int) -> None:
    """Place ``count`` orders round-robin over the customers, each with its own token,
    from ``CLIENT_THREADS`` threads."""
    rng = random.Random(run.run_id)  # noqa: S311 - demo data, not security
    customers = [run.customers[i % len(run.customers)] for i in range(count)]
    tokens = [run.tokens.customer(customer) for customer in customers]
    requests = [order_request(rng) for _ in range(count)]
    run.placements = parallel(
        place, [run.endpoints] * count, range(count), customers, tokens, requests
    )
    for placement in run.placements:
        if placement.order_id is None:
            run.unexpected.append(f"POST /orders: {describe(placement.reply)}")


def customer_orders(run: Run, status: str | None = None) -> dict[str, list[Item]] | None:
    """Each customer's orders (optionally in one status), listed with that customer's token
    (a customer's listing is implicitly their own); None on any error."""
    pages = parallel(
        lambda customer: collect(
            run.endpoints.orders, "/orders", token=run.tokens.customer(customer), status=status
        ),
        run.customers,
    )
    if any(page is None for page in pages):
        return None
    return {customer: page or [] for customer, page in zip(run.customers, pages, strict=True)}


def run_orders(run: Run, status: str | None = None) -> list[Item] | None:
    """Every order of the run's customers (optionally in one status); None on any error."""
    by_customer = customer_orders(run, status)
    return None if by_customer is None else [o for page in by_customer.values() for o in page]


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
    """Pay the chosen orders, then cancel the others (``CLIENT_THREADS`` requests at a time),
    each as the order's customer; record which ones were accepted."""
    paid = parallel(lambda order: pay(run.endpoints, order, run.token_of(order)), to_pay)
    cancelled = parallel(
        lambda order: cancel(run.endpoints, order["id"], run.token_of(order)), to_cancel
    )
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
    a live invoice, as their customers see them; False if ``timeout`` passes first."""
    paid_left, cancelled_left = set(run.paid_ids), set(cancelled)
    owners = run.owners()

    def token(order_id: str) -> str:  # an order the run did not place: the operator looks
        owner = owners.get(order_id)
        return run.tokens.operator if owner is None else run.tokens.customer(owner)

    def done() -> bool:
        paid_left.difference_update(
            only(lambda i: order_status(run.endpoints, i, token(i)) == "paid", paid_left)
        )
        cancelled_left.difference_update(
            only(lambda i: live_invoices(run.endpoints, i, token(i)) == 0, cancelled_left)
        )
        return not paid_left and not cancelled_left

    return poll_until(done, time.monotonic() + timeout)
