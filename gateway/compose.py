"""The compositions both the REST resources and the GraphQL resolvers use.

Each function takes the :class:`Upstream` clients and the caller's forwarded
headers and returns plain JSON-ready dicts. The orders service is required: its
failure raises :class:`UpstreamProblem` (503), and its 4xx answers are passed on
unchanged (404 stays 404, 401 stays 401). The invoices service is optional: its
failure leaves ``invoice: null`` and adds a ``partial_failures`` marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway.clients import Failure, ServiceClient
from gateway.outcomes import (
    UpstreamProblem,
    canonical_id,
    optional_items,
    required,
    required_items,
)
from ops.shared.persistence.idempotency import validate_key

# what /me/orders passes on to GET /orders; /ops/orders adds customer_id
LIST_PARAMS = ("status", "cancel_reason", "created_after", "created_before", "limit", "cursor")
OPERATOR_LIST_PARAMS = (*LIST_PARAMS, "customer_id")
SUMMARY_FIELDS = ("id", "number", "status", "total")


@dataclass(frozen=True)
class Upstream:
    """The two services the gateway composes, and the audit part (operators' health)."""

    orders: ServiceClient
    invoices: ServiceClient
    audit: ServiceClient


def my_orders(
    upstream: Upstream, forward: Mapping[str, str], query: Mapping[str, str | None]
) -> dict[str, Any]:
    """A page of the caller's orders (all orders, for an operator), each with ``invoice``
    (a summary or ``None``).

    ``query`` holds the list's parameters (:data:`LIST_PARAMS`, and ``customer_id``
    from an operator); the orders service validates them. The page's invoices come
    from ONE batched invoices call.
    """
    params = [(name, value) for name, value in query.items() if value is not None]
    orders, page = required_items(
        upstream.orders.call("GET", "/orders", params=params, headers=forward)
    )
    summaries: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, str]] = []
    if orders:
        ids = [str(order.get("id")) for order in orders]
        batch = [("order_id", order_id) for order_id in ids] + [("limit", str(len(ids)))]
        invoices, failures = optional_items(
            upstream.invoices.call("GET", "/invoices", params=batch, headers=forward)
        )
        for invoice in invoices or []:
            summaries[str(invoice.get("order_id"))] = {
                name: invoice.get(name) for name in SUMMARY_FIELDS
            }
    return {
        "items": [{**order, "invoice": summaries.get(str(order.get("id")))} for order in orders],
        "next_cursor": page.get("next_cursor"),
        "partial_failures": failures,
    }


def order_detail(upstream: Upstream, forward: Mapping[str, str], order_id: str) -> dict[str, Any]:
    """One order with its full invoice (or ``None``) and its timeline.

    The three look-ups are independent (the invoice is found by order id) and run
    in parallel, each within the timeout.
    """
    order_id = canonical_id(order_id, "order")
    order_call = upstream.orders.start("GET", f"/orders/{order_id}", headers=forward)
    timeline_call = upstream.orders.start("GET", f"/orders/{order_id}/timeline", headers=forward)
    invoice_call = upstream.invoices.start(
        "GET", "/invoices", params=[("order_id", order_id)], headers=forward
    )
    order = required(order_call.result())
    timeline, _ = required_items(timeline_call.result())
    invoices, failures = optional_items(invoice_call.result())
    return {
        "order": order,
        "invoice": invoices[0] if invoices else None,
        "timeline": timeline,
        "partial_failures": failures,
    }


def _with_key(forward: Mapping[str, str], idempotency_key: str | None) -> dict[str, str]:
    """The forwarded headers plus a valid ``Idempotency-Key`` (422 if unusable)."""
    headers = dict(forward)
    if validate_key(idempotency_key) is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def place_order(
    upstream: Upstream,
    forward: Mapping[str, str],
    body: Mapping[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Place an order (``{"currency", "lines"}``) for the caller; returns the new order."""
    headers = _with_key(forward, idempotency_key)
    outcome = upstream.orders.call("POST", "/orders", headers=headers, body=dict(body))
    return required(outcome, effect=True)


def cancel_order(
    upstream: Upstream, forward: Mapping[str, str], order_id: str, idempotency_key: str | None
) -> dict[str, Any]:
    """Cancel one of the caller's orders; returns the cancelled order."""
    order_id = canonical_id(order_id, "order")
    headers = _with_key(forward, idempotency_key)
    outcome = upstream.orders.call("POST", f"/orders/{order_id}/cancel", headers=headers)
    return required(outcome, effect=True)


def dead_letters(
    upstream: Upstream, forward: Mapping[str, str], include_replayed: bool
) -> dict[str, Any]:
    """Both services' dead letters, newest first (operators). Asked in parallel; a service
    that fails leaves its part out with a ``partial_failures`` marker."""
    params = [("all", "true" if include_replayed else "false")]
    calls = [
        client.start("GET", "/dead-letters", params=params, headers=forward)
        for client in (upstream.orders, upstream.invoices)
    ]
    items: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for call in calls:
        found, failed = optional_items(call.result())
        items.extend(found or [])
        failures.extend(failed)
    items.sort(key=lambda item: str(item.get("failed_at")), reverse=True)
    return {"items": items, "partial_failures": failures}


def replay_dead_letter(
    upstream: Upstream, forward: Mapping[str, str], service: str, message_id: str
) -> dict[str, Any]:
    """Replay one of ``service``'s dead letters; its record as it is now. The service's
    404 (unknown) and 409 (replayed already, by whom and when) are passed on."""
    client = {"orders": upstream.orders, "invoices": upstream.invoices}.get(service)
    if client is None:
        raise UpstreamProblem.not_found(f"service {service}")
    path = f"/dead-letters/{quote(message_id, safe='')}/replay"
    return required(client.call("POST", path, headers=forward), effect=True)


def readiness(upstream: Upstream) -> dict[str, str]:
    """Each service's ``/health``, checked in parallel: ``"ok"`` or why not."""
    clients = {"orders": upstream.orders, "invoices": upstream.invoices}
    calls = {name: client.start("GET", "/health") for name, client in clients.items()}
    checks = {}
    for name, call in calls.items():
        outcome = call.result()
        if isinstance(outcome, Failure):
            checks[name] = f"{outcome.reason}: {outcome.detail}"
        else:
            checks[name] = "ok" if outcome.ok else f"error: answered {outcome.status}"
    return checks


def health(upstream: Upstream, forward: Mapping[str, str]) -> dict[str, Any]:
    """The system's health for operators: the audit part's report (the last audit,
    outbox backlogs, dead letters, queue depths) and whether each service's front is
    ready, asked in parallel. The audit part's 401/403 is passed on; when it cannot
    answer, ``report`` is ``None`` with a ``partial_failures`` marker."""
    report_call = upstream.audit.start("GET", "/report", headers=forward)
    clients = {"orders": upstream.orders, "invoices": upstream.invoices}
    ready_calls = {name: client.start("GET", "/ready") for name, client in clients.items()}
    fronts = []
    for name, call in ready_calls.items():
        outcome = call.result()
        if isinstance(outcome, Failure):
            fronts.append({"service": name, "ready": False, "detail": outcome.detail})
        else:
            detail = "ready" if outcome.ok else f"answered {outcome.status}"
            fronts.append({"service": name, "ready": outcome.ok, "detail": detail})
    outcome = report_call.result()
    report: dict[str, Any] | None = None
    failures: list[dict[str, str]] = []
    if isinstance(outcome, Failure):
        failures.append(outcome.as_marker())
    else:
        report = required(outcome)  # a 4xx (token refused, not an operator) is passed on
    return {"report": report, "fronts": fronts, "partial_failures": failures}
