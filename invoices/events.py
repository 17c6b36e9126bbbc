"""Events the invoices service publishes through its outbox (past tense, primitives only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class InvoiceIssued:
    """The order's invoice was issued within the customer's credit."""

    order_id: str
    invoice_id: str
    invoice_number: str


@dataclass(frozen=True)
class InvoiceRejected:
    """The credit rule refused the order's invoice (a business outcome, not a failure)."""

    order_id: str
    reason: str


@dataclass(frozen=True)
class InvoiceFailed:
    """Issuing the invoice failed for good (retries exhausted); the order must be cancelled."""

    order_id: str
    error: str


@dataclass(frozen=True)
class InvoicePaid:
    """The invoice was paid in full."""

    order_id: str
    invoice_id: str
    invoice_number: str


@dataclass(frozen=True)
class InvoiceVoided:
    """The invoice was voided; ``refund`` is true when it had been paid."""

    order_id: str
    invoice_id: str
    invoice_number: str
    reason: str
    refund: bool


Event = InvoiceIssued | InvoiceRejected | InvoiceFailed | InvoicePaid | InvoiceVoided


def payload(event: Event) -> dict[str, Any]:
    """The event's fields as the JSON payload stored in the outbox."""
    return asdict(event)
