"""The API calls the demo makes, each as the bearer of a given token."""

from __future__ import annotations

from email.message import Message

from ops.demo.client import Endpoints, Item, Reply, call, collect, idempotency_key

LIVE_INVOICE = frozenset({"issued", "paid"})


def invoices_of(endpoints: Endpoints, order_id: str, token: str) -> list[Item] | None:
    """The order's invoices (``GET /invoices?order_id=``) as ``token`` sees them: all of
    them for an operator, the customer's own for a customer; None if the listing failed."""
    return collect(endpoints.invoices, "/invoices", token=token, order_id=order_id)


def pay(endpoints: Endpoints, order: Item, token: str, amount: str | None = None) -> Reply:
    """Pay the order's invoice as ``token`` (its customer) with ``amount``, or with its
    total; status 0 if the order has not exactly one invoice."""
    invoices = invoices_of(endpoints, order["id"], token)
    if invoices is None or len(invoices) != 1:
        count = "?" if invoices is None else len(invoices)
        return Reply(0, Message(), {"error": f"order has {count} invoices, expected 1"})
    invoice = invoices[0]
    return call(
        "POST",
        f"{endpoints.invoices}/invoices/{invoice['id']}/payments",
        {"amount": amount or invoice["total"]},
        idempotency_key(),
        token=token,
    )


def cancel(endpoints: Endpoints, order_id: str, token: str) -> Reply:
    """``POST /orders/{id}/cancel`` as ``token``, without a body, under a fresh
    Idempotency-Key."""
    return call(
        "POST",
        f"{endpoints.orders}/orders/{order_id}/cancel",
        None,
        idempotency_key(),
        token=token,
    )


def order_status(endpoints: Endpoints, order_id: str, token: str) -> str | None:
    """The order's status as ``GET /orders/{id}`` shows it to ``token``; None if it did not
    answer 200."""
    reply = call("GET", f"{endpoints.orders}/orders/{order_id}", token=token)
    return reply.body.get("status") if reply.status == 200 and reply.body else None


def live_invoices(endpoints: Endpoints, order_id: str, token: str) -> int | None:
    """How many issued or paid invoices of the order ``token`` sees; None if the listing
    failed."""
    invoices = invoices_of(endpoints, order_id, token)
    return None if invoices is None else sum(i["status"] in LIVE_INVOICE for i in invoices)
