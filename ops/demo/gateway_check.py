"""The gateway check: ``GET /me/orders/{id}`` and ``GET /me/orders`` compose, for one
customer, what the orders and invoices services say on their own."""

from __future__ import annotations

import time
from typing import Any

from ops.demo.access import expect, neighbour, spread
from ops.demo.client import Item, call, collect, describe, parallel, poll_until
from ops.demo.record import Run
from ops.demo.state import Check, FinalState

NAME = "gateway composes the order screen"
GATEWAY_WAIT = 10.0  # seconds a gateway the demo started may still take to answer


def gateway_up(base: str, started: bool) -> bool:
    """True if the gateway answers ``GET /health`` with 200 (waiting a little for one the
    demo started)."""
    wait = GATEWAY_WAIT if started else 0.0
    return poll_until(
        lambda: call("GET", f"{base}/health", token=None).status == 200,
        time.monotonic() + wait,
    )


def expected_invoice(state: FinalState, order_id: str) -> str | None:
    """The number of the order's invoice as the invoices service lists it (None if none)."""
    invoices = state.invoices.get(order_id) or []
    return invoices[0]["number"] if invoices else None


def invoice_number(composed: Item) -> str | None:
    """The number of the invoice (full or summary) a composed answer shows; None if none."""
    invoice = composed.get("invoice")
    return invoice.get("number") if isinstance(invoice, dict) else None


def order_part(composed: Item) -> Item:
    """The order in a composed answer (under ``order``, or the answer itself)."""
    order = composed.get("order")
    return order if isinstance(order, dict) else composed


def steps(composed: Item) -> list[Any]:
    """The timeline's steps (a list, or a listing's ``items``)."""
    timeline = composed.get("timeline")
    if isinstance(timeline, dict):
        timeline = timeline.get("items")
    return timeline if isinstance(timeline, list) else []


def screen_problems(run: Run, state: FinalState, order: Item) -> list[str]:
    """What ``GET /me/orders/{id}`` gets wrong for ``order``, as its customer and as
    another customer (who must get 404)."""
    order_id, owner = order["id"], order["customer_id"]
    screen = f"{run.endpoints.gateway}/me/orders/{order_id}"
    reply = call("GET", screen, token=run.tokens.customer(owner))
    other = neighbour(run, owner)
    problems = expect(
        404,
        f"{other} GET /me/orders/{order_id}",
        call("GET", screen, token=run.tokens.customer(other)),
    )
    if reply.status != 200 or not isinstance(reply.body, dict):
        return [f"GET /me/orders/{order_id}: {describe(reply)}, expected 200", *problems]
    body, what = reply.body, f"/me/orders/{order_id}"
    status = order_part(body).get("status")
    if status != order["status"]:
        problems.append(f"{what}: status {status}, the orders service says {order['status']}")
    number, expected = invoice_number(body), expected_invoice(state, order_id)
    if number != expected:
        problems.append(f"{what}: invoice {number}, the invoices service says {expected}")
    if not steps(body):
        problems.append(f"{what}: the timeline is empty")
    if body.get("partial_failures") != []:
        problems.append(f"{what}: partial_failures {body.get('partial_failures')!r}")
    return problems


def listing_problems(run: Run, state: FinalState, customer: str) -> list[str]:
    """What ``GET /me/orders`` gets wrong for ``customer``: other orders than theirs, a
    missing one, or an invoice summary that differs from the invoices service."""
    items = collect(run.endpoints.gateway, "/me/orders", token=run.tokens.customer(customer))
    if items is None:
        return [f"{customer} GET /me/orders: not a readable listing"]
    listed = [order_part(item).get("id") for item in items]
    expected = {order["id"] for order in state.by_customer[customer]}
    problems = [f"GET /me/orders lists order {i} twice" for i in set(listed) if listed.count(i) > 1]
    problems += [
        f"GET /me/orders lists order {i}, not {customer}'s" for i in set(listed) - expected
    ]
    problems += [f"GET /me/orders does not list order {i}" for i in sorted(expected - set(listed))]
    for item in items:
        order_id = order_part(item).get("id")
        number, wanted = invoice_number(item), expected_invoice(state, order_id)
        if order_id in expected and number != wanted:
            problems.append(
                f"GET /me/orders: order {order_id} shows invoice {number}, not {wanted}"
            )
    return problems


def chosen_customer(state: FinalState) -> str:
    """The customer whose orders are in the most different statuses (then: the most)."""
    return max(
        state.by_customer,
        key=lambda c: (len({o["status"] for o in state.by_customer[c]}), len(state.by_customer[c])),
    )


def check_gateway(run: Run, state: FinalState, started: bool) -> Check:
    """The gateway check; skipped if no gateway runs, unless the demo started the system
    (then the gateway is part of it, and its absence fails the check)."""
    base = run.endpoints.gateway
    if not gateway_up(base, started):
        if started:
            return Check(NAME, [f"the gateway does not answer GET {base}/health"])
        return Check(NAME, [], skipped="gateway not running")
    customer = chosen_customer(state)
    orders = sorted(state.by_customer[customer], key=lambda o: (o["status"], o["id"]))
    screens = parallel(lambda order: screen_problems(run, state, order), spread(orders))
    anonymous = call("GET", f"{base}/me/orders", token=None)
    return Check(
        NAME,
        [problem for problems in screens for problem in problems]
        + listing_problems(run, state, customer)
        + expect(401, "GET /me/orders without a token", anonymous),
    )
