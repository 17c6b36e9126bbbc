"""The authorization check: no token answers 401, another customer's resources 404 (like
unknown ids), a customer setting a credit limit 403, and a customer's lists are their own."""

from __future__ import annotations

from typing import TypeVar

from ops.demo.client import Item, Reply, call, collect, describe, parallel
from ops.demo.record import Run
from ops.demo.state import FinalState

SAMPLE = 10  # orders read by another customer
T = TypeVar("T")


def spread(items: list[T], size: int = SAMPLE) -> list[T]:
    """Up to ``size`` of ``items``, evenly spread over the list."""
    return items[:: max(1, len(items) // size)][:size]


def expect(status: int, what: str, reply: Reply) -> list[str]:
    """An offender if ``reply`` did not answer ``status``, else none."""
    return [] if reply.status == status else [f"{what}: {describe(reply)}, expected {status}"]


def neighbour(run: Run, customer: str) -> str:
    """Another customer of the run (an outsider who placed nothing if there is only one)."""
    others = [c for c in run.customers if c != customer]
    return others[0] if others else f"demo-{run.run_id}-outsider"


def anonymous_problems(run: Run) -> list[str]:
    """Requests without a token that do not answer 401."""
    endpoints = run.endpoints
    paths = [
        (endpoints.orders, "/orders"),
        (endpoints.invoices, "/invoices"),
        (endpoints.invoices, f"/accounts/{run.customers[0]}"),
    ]
    problems: list[str] = []
    for base, path in paths:
        reply = call("GET", base + path, token=None)
        problems += expect(401, f"GET {path} without a token", reply)
    return problems


def cross_read_problems(run: Run, state: FinalState, order: Item) -> list[str]:
    """The order as its customer and as another customer sees it: 200 for the owner; 404
    for the other (order, timeline, invoices) and no invoice in the other's listing."""
    order_id, owner = order["id"], order["customer_id"]
    other = neighbour(run, owner)
    mine, theirs = run.tokens.customer(owner), run.tokens.customer(other)
    orders = f"{run.endpoints.orders}/orders/{order_id}"
    problems = expect(200, f"owner GET /orders/{order_id}", call("GET", orders, token=mine))
    problems += expect(404, f"{other} GET /orders/{order_id}", call("GET", orders, token=theirs))
    timeline = call("GET", f"{orders}/timeline", token=theirs)
    problems += expect(404, f"{other} GET /orders/{order_id}/timeline", timeline)
    for invoice in state.invoices.get(order_id) or []:
        reply = call("GET", f"{run.endpoints.invoices}/invoices/{invoice['id']}", token=theirs)
        problems += expect(404, f"{other} GET /invoices/{invoice['id']}", reply)
    listed = collect(run.endpoints.invoices, "/invoices", token=theirs, order_id=order_id)
    if listed != []:
        count = "unreadable" if listed is None else f"{len(listed)} invoices"
        problems.append(f"{other} GET /invoices?order_id={order_id}: {count}, expected none")
    return problems


def account_problems(run: Run) -> list[str]:
    """A customer reads their own account (200), not another's (404), and may not set
    their own credit limit (403)."""
    customer = run.customers[0]
    other = neighbour(run, customer)
    account = f"{run.endpoints.invoices}/accounts/{customer}"
    own = call("GET", account, token=run.tokens.customer(customer))
    problems = expect(200, f"{customer} GET /accounts/{customer}", own)
    if own.status == 200 and (own.body or {}).get("customer_id") != customer:
        problems.append(f"{customer} GET /accounts/{customer} shows another account")
    problems += expect(
        404,
        f"{other} GET /accounts/{customer}",
        call("GET", account, token=run.tokens.customer(other)),
    )
    raise_limit = call(
        "PUT", account, {"credit_limit": "1000000.00"}, token=run.tokens.customer(customer)
    )
    return problems + expect(403, f"{customer} PUT /accounts/{customer}", raise_limit)


def listing_problems(state: FinalState) -> list[str]:
    """Orders a customer's listing shows that belong to someone else."""
    return [
        f"{customer}'s GET /orders shows order {order['id']} of {order['customer_id']}"
        for customer, orders in state.by_customer.items()
        for order in orders
        if order["customer_id"] != customer
    ]


def check_access(run: Run, state: FinalState) -> list[str]:
    """Every authorization problem found: anonymous requests, cross-customer reads of a
    sample of orders, accounts, and lists."""
    cross = parallel(lambda order: cross_read_problems(run, state, order), spread(state.orders))
    return (
        anonymous_problems(run)
        + [problem for problems in cross for problem in problems]
        + account_problems(run)
        + listing_problems(state)
    )
