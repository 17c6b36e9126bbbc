"""The naive front: ``POST /orders`` inserts the order, then sends ``issue_invoice``.

No outbox: the insert commits on its own, then ``send()`` publishes without a
confirm. If the publish fails the client gets a 500 for an order that exists,
pending for good. No idempotency key: a retried ``POST`` places a second order.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from functools import partial
from typing import Any

import falcon
import falcon.media
import peewee

from tests.bench.naive.actors import issue_invoice
from tests.bench.naive.schema import Order, orders_db, utcnow


def money(minor: int) -> str:
    """Minor units as a decimal string with two places: ``1234`` → ``"12.34"``."""
    return f"{minor // 100}.{minor % 100:02d}"


def read_line(item: Any) -> tuple[dict[str, Any], int]:
    """One order line (its price as a string) and its amount in minor units.

    Raises KeyError, TypeError, ValueError or ArithmeticError if the line is malformed.
    """
    sku, quantity = item["sku"], item["quantity"]
    price = Decimal(item["unit_price"])  # a string, or a JSON number parsed as Decimal
    price_minor = int(price * 100)
    if not isinstance(sku, str) or not 0 < len(sku) <= 64:
        raise ValueError("sku must be a non-empty string")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValueError("quantity must be a positive integer")
    if price_minor < 0 or price * 100 != price_minor:
        raise ValueError("unit_price must be a non-negative amount with at most two decimals")
    return {"sku": sku, "quantity": quantity, "unit_price": money(price_minor)}, (
        price_minor * quantity
    )


def read_order(body: Any) -> tuple[str, str, list[dict[str, Any]], int]:
    """The customer, currency, lines and total (minor units) of a ``POST /orders`` body.

    The customer is ``customer_id`` when the body has one, else ``anonymous``: the naive
    front checks no token (the benchmark's client sends orderflow's body, which has
    none). Raises 400 Bad Request if a field is missing or malformed.
    """
    try:
        customer_id, currency = body.get("customer_id", "anonymous"), body["currency"]
        lines = [read_line(item) for item in body["lines"]]
        if not isinstance(customer_id, str) or not 0 < len(customer_id) <= 64:
            raise ValueError("customer_id must be a non-empty string")
        if not isinstance(currency, str) or len(currency) != 3:
            raise ValueError("currency must be a three-letter code")
        if not lines:
            raise ValueError("an order needs at least one line")
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise falcon.HTTPBadRequest(title="Invalid order", description=detail) from exc
    return customer_id, currency, [line for line, _ in lines], sum(amount for _, amount in lines)


class OrderCollection:
    """``/orders``: place an order."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        customer_id, currency, lines, total_minor = read_order(req.get_media())
        now = utcnow()
        order = Order.create(
            id=uuid.uuid4(),
            customer_id=customer_id,
            lines=json.dumps(lines, separators=(",", ":")),
            total_minor=total_minor,
            currency=currency,
            status="pending",
            created_at=now,
            updated_at=now,
        )
        issue_invoice.send(str(order.id), customer_id, total_minor, currency)
        resp.status = falcon.HTTP_201
        resp.media = {
            "id": str(order.id),
            "customer_id": customer_id,
            "lines": lines,
            "total": money(total_minor),
            "currency": currency,
            "status": "pending",
            "created_at": now.isoformat() + "Z",
        }


class Health:
    """``/health``: the process answers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """``/ready``: the orders database answers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            orders_db.execute_sql("SELECT 1")
        except peewee.PeeweeException as exc:
            raise falcon.HTTPServiceUnavailable(description=str(exc)) from exc
        resp.media = {"status": "ready"}


def create_app() -> falcon.App:
    """The Falcon app; JSON numbers in request bodies are parsed as Decimal, never float."""
    app = falcon.App()
    json_handler = falcon.media.JSONHandler(loads=partial(json.loads, parse_float=Decimal))
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.add_route("/orders", OrderCollection())
    app.add_route("/health", Health())
    app.add_route("/ready", Ready())
    return app
