"""HTTP resources of the orders service: authorise, parse, call a service function, serialise."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import falcon

from ops.shared.persistence.idempotency import IdempotencyStore, Outcome
from ops.shared.values.clock import isoformat, parse_utc
from ops.shared.values.errors import FieldCollector, FieldError, InvalidFields
from ops.shared.values.money import format_minor
from ops.shared.values.pagination import parse_page
from ops.shared.web.auth import Principal, TokenKeys, can_see, principal_of, require_customer
from ops.shared.web.bodies import read_json, read_optional_json
from ops.shared.web.http import IdempotentPost, create_base_app
from orders import queries, service
from orders.domain import MAX_TEXT as MAX_CUSTOMER_ID
from orders.domain import CancelReason, OrderNotFound, Status, validate_new_order
from orders.models import IdempotencyKey, Order, OrderStep, database

SERVICE = "orders"


def order_view(order: Order) -> dict[str, Any]:
    """An order as the API shows it (decimals as strings, times as ISO 8601 UTC)."""
    return {
        "id": str(order.id),
        "customer_id": order.customer_id,
        "lines": list(queries.lines_of(order)),
        "total": format_minor(order.total_minor),
        "currency": order.currency,
        "status": order.status,
        "cancel_reason": order.cancel_reason,
        "invoice_id": str(order.invoice_id) if order.invoice_id else None,
        "invoice_number": order.invoice_number,
        "created_at": isoformat(order.created_at),
        "updated_at": isoformat(order.updated_at),
    }


def step_view(step: OrderStep) -> dict[str, Any]:
    """One saga step of the timeline."""
    return {
        "at": isoformat(step.at),
        "event": step.event,
        "outcome": step.outcome,
        "detail": step.detail,
        "trace_id": step.trace_id,
    }


def visible_order(principal: Principal, order_id: uuid.UUID) -> Order:
    """The order, if the caller may see it; another customer's order is 'not found'."""
    order = queries.get_order(order_id)
    if not can_see(principal, order.customer_id):
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


class OrderCollection(IdempotentPost):
    """``/orders``: a customer places an order; list orders (a customer's own, or all)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        customer = require_customer(req)
        body = read_json(req)
        new = validate_new_order(body, customer.subject)

        def place() -> Outcome:
            order = service.place_order(new)
            return Outcome(201, order_view(order), {"Location": f"/orders/{order.id}"})

        # Orders placed together share one transaction and one commit (group commit).
        self.answer(req, resp, body, place, grouped=True)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = principal_of(req)
        errors = FieldCollector()
        customer_id = req.get_param("customer_id")
        if customer_id is not None and not principal.is_operator:
            errors.add("customer_id", "only operators filter by customer; yours is implied")
        elif customer_id is not None and (
            not 0 < len(customer_id) <= MAX_CUSTOMER_ID or not customer_id.isprintable()
        ):
            errors.add("customer_id", f"must be 1 to {MAX_CUSTOMER_ID} printable characters")
        if not principal.is_operator:
            customer_id = principal.subject
        which = queries.OrderFilter(
            customer_id=customer_id,
            status=_choice(req, "status", Status, errors),
            cancel_reason=_choice(req, "cancel_reason", CancelReason, errors),
            created_after=_moment(req, "created_after", errors),
            created_before=_moment(req, "created_before", errors),
        )
        page = parse_page(req.get_param("limit"), req.get_param("cursor"), errors)
        errors.raise_if_any()
        rows, next_cursor = queries.list_orders(which, page)
        resp.media = {"items": [order_view(order) for order in rows], "next_cursor": next_cursor}


Choice = TypeVar("Choice", bound=StrEnum)


def _choice(
    req: falcon.Request, name: str, kind: type[Choice], errors: FieldCollector
) -> Choice | None:
    """The query parameter ``name`` as a member of ``kind``; None when absent."""
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        errors.add(name, "must be one of " + ", ".join(member.value for member in kind))
        return None


def _moment(req: falcon.Request, name: str, errors: FieldCollector) -> dt.datetime | None:
    """The query parameter ``name`` as naive UTC; None when absent."""
    raw = req.get_param(name)
    if raw is None:
        return None
    moment = parse_utc(raw)
    if moment is None:
        errors.add(name, "must be an ISO 8601 time with a Z or an offset")
    return moment


class OrderItem:
    """``/orders/{id}``: one order."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_id: uuid.UUID) -> None:
        resp.media = order_view(visible_order(principal_of(req), order_id))


class OrderTimeline:
    """``/orders/{id}/timeline``: the order's saga steps, oldest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_id: uuid.UUID) -> None:
        visible_order(principal_of(req), order_id)
        resp.media = {"items": [step_view(step) for step in queries.timeline(order_id)]}


class OrderCancellation(IdempotentPost):
    """``/orders/{id}/cancel``: cancel a pending or confirmed order (its customer, or an
    operator on their behalf)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, order_id: uuid.UUID) -> None:
        principal = principal_of(req)
        body = read_optional_json(req)
        if body:
            raise InvalidFields([FieldError(name, "is not accepted here") for name in body])
        owner = None if principal.is_operator else principal.subject

        def cancel() -> Outcome:
            return Outcome(200, order_view(service.cancel_order_by_customer(order_id, owner)))

        self.answer(req, resp, body, cancel)


def create_app(
    *,
    idempotency_ttl: float,
    max_body_bytes: int,
    ready_checks: dict[str, Callable[[], None]],
    token_keys: TokenKeys,
) -> falcon.App:
    """The orders HTTP app; the database behind ``orders.models.database`` must be set."""
    app = create_base_app(
        SERVICE,
        databases={"database": database},
        max_body_bytes=max_body_bytes,
        ready_checks=ready_checks,
        token_keys=token_keys,
    )
    idempotency = IdempotencyStore(IdempotencyKey, idempotency_ttl, service=SERVICE)
    app.add_route("/orders", OrderCollection(idempotency))
    app.add_route("/orders/{order_id:uuid}", OrderItem())
    app.add_route("/orders/{order_id:uuid}/timeline", OrderTimeline())
    app.add_route("/orders/{order_id:uuid}/cancel", OrderCancellation(idempotency))
    return app
