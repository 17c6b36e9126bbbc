"""The demo's consistency checks: what is wrong with the final state, and the list of checks."""

from __future__ import annotations

from decimal import Decimal

from ops.demo.access import check_access
from ops.demo.calls import LIVE_INVOICE, cancel, order_status, pay
from ops.demo.client import Item, describe
from ops.demo.gateway_check import check_gateway
from ops.demo.record import Placement, Run
from ops.demo.state import Check, FinalState


def expected_refusals(run: Run, untouched: list[Item]) -> None:
    """Cancelling a paid order must answer 409, paying an issued invoice the wrong amount
    422 (both asked by the order's customer); each other answer, or a missing candidate,
    is recorded as an offender."""
    owners = run.owners()
    paid = next(
        (
            i
            for i in run.paid_ids
            if i in owners
            and order_status(run.endpoints, i, run.tokens.customer(owners[i])) == "paid"
        ),
        None,
    )
    if paid is None:
        run.refusals.append("no order showing paid to try cancelling")
    elif (reply := cancel(run.endpoints, paid, run.tokens.customer(owners[paid]))).status != 409:
        run.refusals.append(f"cancelling paid order {paid}: {describe(reply)}, expected 409")
    if not untouched:
        run.refusals.append("no issued invoice to try paying the wrong amount")
        return
    order = untouched[0]
    wrong = str(Decimal(order["total"]) + Decimal("0.01"))
    if (reply := pay(run.endpoints, order, run.token_of(order), wrong)).status != 422:
        run.refusals.append(
            f"paying {wrong} for order {order['id']} (total {order['total']}): "
            f"{describe(reply)}, expected 422"
        )


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


def consistency_checks(run: Run, state: FinalState, started: bool) -> list[Check]:
    """Every check of the final state, in the order the summary shows them; ``started``
    says the demo started the system itself (so the gateway must be running)."""
    return [
        Check("scenario requests accepted", run.unexpected),
        Check("every order finished (no pending)", check_finished(run, state)),
        Check("one invoice per confirmed or paid order", check_one_invoice(state)),
        Check("cancelled orders have no live invoice", check_no_live_invoice(state)),
        Check("invoice total and currency equal the order's", check_invoices_match(state)),
        Check("payments and cancellations took effect", check_effects(run, state)),
        Check("idempotent replays: first response, no extra order", check_replays(run, state)),
        Check("expected 409 (cancel paid) and 422 (wrong amount)", run.refusals),
        Check("authorization enforced (401, 403, 404)", check_access(run, state)),
        check_gateway(run, state, started),
    ]
