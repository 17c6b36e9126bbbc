"""HTTP resources of the invoices service: parse, call a service function, serialise."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import falcon

from invoices import accounts, queries, service
from invoices.domain import InvoiceNotFound, InvoiceStatus
from invoices.models import IdempotencyKey, Invoice, database
from ops.shared.persistence.idempotency import IdempotencyStore, Outcome
from ops.shared.values.clock import isoformat
from ops.shared.values.errors import FieldCollector, NotFound
from ops.shared.values.money import AmountError, format_minor, parse_amount
from ops.shared.values.pagination import parse_page
from ops.shared.web.auth import (
    TokenKeys,
    can_see,
    principal_of,
    require_customer,
    require_operator,
)
from ops.shared.web.bodies import read_json
from ops.shared.web.http import IdempotentPost, create_base_app

SERVICE = "invoices"
MAX_CUSTOMER_ID = 64
MAX_ORDER_IDS = 200


def invoice_view(invoice: Invoice) -> dict[str, Any]:
    """An invoice as the API shows it (decimals as strings, times as ISO 8601 UTC)."""
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "order_id": invoice.order_id,
        "customer_id": invoice.customer_id,
        "total": format_minor(invoice.total_minor),
        "currency": invoice.currency,
        "status": invoice.status,
        "issued_at": isoformat(invoice.issued_at),
        "paid_at": isoformat(invoice.paid_at),
        "voided_at": isoformat(invoice.voided_at),
        "void_reason": invoice.void_reason,
    }


def account_view(account: accounts.Account) -> dict[str, Any]:
    """A billing account as the API shows it."""
    return {
        "customer_id": account.customer_id,
        "credit_limit": format_minor(account.credit_limit_minor),
        "outstanding": format_minor(account.outstanding_minor),
        "available": format_minor(account.available_minor),
    }


def _customer(value: str | None, errors: FieldCollector, field: str = "customer_id") -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_CUSTOMER_ID or not value.isprintable():
        errors.add(field, f"must be 1 to {MAX_CUSTOMER_ID} printable characters")
    return value


class InvoiceCollection:
    """``/invoices``: list invoices (a customer's own, or all) by orders and status."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = principal_of(req)
        errors = FieldCollector()
        order_ids = _order_ids(req.get_param_as_list("order_id", delimiter=","), errors)
        customer_id = _customer(req.get_param("customer_id"), errors)
        if customer_id is not None and not principal.is_operator:
            errors.add("customer_id", "only operators filter by customer; yours is implied")
        if not principal.is_operator:
            customer_id = principal.subject
        status = None
        if (raw := req.get_param("status")) is not None:
            try:
                status = InvoiceStatus(raw)
            except ValueError:
                errors.add("status", "must be one of " + ", ".join(s.value for s in InvoiceStatus))
        page = parse_page(req.get_param("limit"), req.get_param("cursor"), errors)
        errors.raise_if_any()
        rows, next_cursor = queries.list_invoices(order_ids, customer_id, status, page)
        resp.media = {"items": [invoice_view(row) for row in rows], "next_cursor": next_cursor}


def _order_ids(raw: list[str] | None, errors: FieldCollector) -> list[str] | None:
    """Repeated ``order_id`` parameters (or a comma-separated list), at most 200 UUIDs."""
    if raw is None:
        return None
    if len(raw) > MAX_ORDER_IDS:
        errors.add("order_id", f"at most {MAX_ORDER_IDS} order ids per request")
        return None
    try:
        return [str(uuid.UUID(value)) for value in raw]
    except ValueError:
        errors.add("order_id", "must be UUIDs")
        return None


class InvoiceItem:
    """``/invoices/{id}``: one invoice."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, invoice_id: uuid.UUID) -> None:
        invoice = queries.get_invoice(invoice_id)
        if not can_see(principal_of(req), invoice.customer_id):
            raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
        resp.media = invoice_view(invoice)


class InvoicePayments(IdempotentPost):
    """``/invoices/{id}/payments``: pay an invoice with its exact total."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, invoice_id: uuid.UUID) -> None:
        customer = require_customer(req)
        body = read_json(req)
        errors = FieldCollector()
        try:
            parse_amount(body.get("amount"))
        except AmountError as exc:
            errors.add("amount", str(exc))
        for name in sorted(set(body) - {"amount"}):
            errors.add(name, "is not a field of a payment")
        errors.raise_if_any()

        def pay() -> Outcome:
            invoice = service.pay_invoice(invoice_id, body["amount"], customer.subject)
            return Outcome(200, invoice_view(invoice))

        self.answer(req, resp, body, pay)


class AccountItem:
    """``/accounts/{customer_id}``: read or set a customer's credit limit."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, customer_id: str) -> None:
        if not can_see(principal_of(req), customer_id):
            raise NotFound(f"account {customer_id} does not exist")
        errors = FieldCollector()
        _customer(customer_id, errors)
        errors.raise_if_any()
        resp.media = account_view(accounts.get_account(customer_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, customer_id: str) -> None:
        require_operator(req)
        body = read_json(req)
        errors = FieldCollector()
        _customer(customer_id, errors)
        limit = 0
        try:
            limit = parse_amount(body.get("credit_limit"), positive=False)
        except AmountError as exc:
            errors.add("credit_limit", str(exc))
        for name in sorted(set(body) - {"credit_limit"}):
            errors.add(name, "is not a field of an account")
        errors.raise_if_any()
        resp.media = account_view(accounts.set_credit_limit(customer_id, limit))


def create_app(
    *,
    idempotency_ttl: float,
    max_body_bytes: int,
    ready_checks: dict[str, Callable[[], None]],
    token_keys: TokenKeys,
) -> falcon.App:
    """The invoices HTTP app; the database behind ``invoices.models.database`` must be set."""
    app = create_base_app(
        SERVICE,
        databases={"database": database},
        max_body_bytes=max_body_bytes,
        ready_checks=ready_checks,
        token_keys=token_keys,
    )
    idempotency = IdempotencyStore(IdempotencyKey, idempotency_ttl, service=SERVICE)
    app.add_route("/invoices", InvoiceCollection())
    app.add_route("/invoices/{invoice_id:uuid}", InvoiceItem())
    app.add_route("/invoices/{invoice_id:uuid}/payments", InvoicePayments(idempotency))
    app.add_route("/accounts/{customer_id}", AccountItem())
    return app
