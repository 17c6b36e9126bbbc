"""Order rules: what a valid order is, and which transitions the saga may make.

Pure functions and values, no I/O. The service asks these rules before every
change, so an event that arrives late or out of order never moves an order
backwards: it is ignored, or answered with a compensation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ops.shared.values.errors import Conflict, FieldCollector, NotFound
from ops.shared.values.money import MAX_MINOR, AmountError, format_minor, parse_amount

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_TEXT = 64
CURRENCY = re.compile(r"[A-Z]{3}")


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PAID = "paid"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    CREDIT_REJECTED = "credit_rejected"
    CUSTOMER_CANCELLED = "customer_cancelled"
    EXPIRED = "expired"
    INVOICE_FAILED = "invoice_failed"


class Decision(StrEnum):
    """What the service does with an incoming saga event."""

    APPLY = "apply"  # make the transition
    IGNORE = "ignore"  # stale or repeated: the order is already past this point
    COMPENSATE = "compensate"  # the order was cancelled: undo the other side's effect


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True)
class NewOrder:
    """A validated order request; the total is computed, never taken from the client."""

    customer_id: str
    currency: str
    lines: tuple[Line, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


class OrderNotFound(NotFound):
    """No order has this id."""


class OrderNotCancellable(Conflict):
    """The order is paid or already cancelled."""


def decide_confirm(status: Status) -> Decision:
    """An invoice was issued: confirm a pending order; void the invoice of a cancelled one."""
    if status is Status.PENDING:
        return Decision.APPLY
    if status is Status.CANCELLED:
        return Decision.COMPENSATE
    return Decision.IGNORE


def decide_paid(status: Status) -> Decision:
    """An invoice was paid: a pending or confirmed order becomes paid; others stay."""
    if status in (Status.PENDING, Status.CONFIRMED):
        return Decision.APPLY
    return Decision.IGNORE


def decide_cancel(status: Status) -> Decision:
    """Cancellation by the saga (rejected, failed) only applies to pending orders (a
    customer cancels through :func:`check_customer_cancel`)."""
    if status is Status.PENDING:
        return Decision.APPLY
    return Decision.IGNORE


def check_customer_cancel(status: Status) -> None:
    """Raise :class:`OrderNotCancellable` unless a customer may cancel in ``status``."""
    if status is Status.PAID:
        raise OrderNotCancellable("a paid order cannot be cancelled")
    if status is Status.CANCELLED:
        raise OrderNotCancellable("the order is already cancelled")


def validate_new_order(body: dict[str, Any], customer_id: str) -> NewOrder:
    """Validate a ``POST /orders`` body for ``customer_id`` (the token's subject).

    Raises InvalidFields naming every bad field; the body names no customer.
    """
    errors = FieldCollector()
    currency = body.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        errors.add("currency", "must be three upper-case letters, such as EUR")
    lines = _lines(body.get("lines"), errors)
    if sum(line.amount_minor for line in lines) > MAX_MINOR:
        errors.add("lines", f"the order total must not exceed {format_minor(MAX_MINOR)}")
    for name in sorted(set(body) - {"currency", "lines"}):
        hint = " (the customer is the token's subject)" if name == "customer_id" else ""
        errors.add(name, f"is not a field of an order{hint}")
    errors.raise_if_any()
    return NewOrder(customer_id=customer_id, currency=currency, lines=tuple(lines))  # type: ignore[arg-type]


def _lines(raw: Any, errors: FieldCollector) -> list[Line]:
    if not isinstance(raw, list) or not raw:
        errors.add("lines", "must be a non-empty list of order lines")
        return []
    if len(raw) > MAX_LINES:
        errors.add("lines", f"must have at most {MAX_LINES} lines")
        return []
    lines = []
    for index, item in enumerate(raw):
        where = f"lines[{index}]"
        if not isinstance(item, dict):
            errors.add(where, "must be an object with sku, quantity and unit_price")
            continue
        sku = _text(item.get("sku"), f"{where}.sku", errors)
        quantity = item.get("quantity")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 1 <= quantity <= MAX_QUANTITY
        ):
            errors.add(f"{where}.quantity", f"must be an integer from 1 to {MAX_QUANTITY}")
        price = 0
        try:
            price = parse_amount(item.get("unit_price"))
        except AmountError as exc:
            errors.add(f"{where}.unit_price", str(exc))
        for name in sorted(set(item) - {"sku", "quantity", "unit_price"}):
            errors.add(f"{where}.{name}", "is not a field of an order line")
        if isinstance(quantity, int) and not isinstance(quantity, bool):
            lines.append(Line(sku, quantity, price))
    return lines


def _text(value: Any, field: str, errors: FieldCollector) -> str:
    if not isinstance(value, str) or not value.strip():
        errors.add(field, "must be a non-empty string")
        return ""
    if len(value) > MAX_TEXT:
        errors.add(field, f"must be at most {MAX_TEXT} characters")
    elif "\x00" in value or not value.isprintable():
        errors.add(field, "must not contain NUL or other control characters")
    return value
