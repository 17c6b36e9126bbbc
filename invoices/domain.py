"""Invoice rules: the credit rule, numbering, payment and void transitions. No I/O."""

from __future__ import annotations

from enum import StrEnum

from ops.shared.values.errors import Conflict, NotFound, Unprocessable
from ops.shared.values.money import format_minor

NUMBER_PREFIX = "INV-"


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"


class VoidDecision(StrEnum):
    VOID = "void"  # an issued invoice becomes void
    REFUND = "refund"  # a payment raced the cancellation: void it and owe a refund
    IGNORE = "ignore"  # already void


class InvoiceNotFound(NotFound):
    """No invoice has this id."""


class InvoiceNotPayable(Conflict):
    """The invoice is void or already paid."""


class WrongAmount(Unprocessable):
    """A payment must be for the invoice's exact total."""


def credit_allows(outstanding_minor: int, total_minor: int, limit_minor: int) -> bool:
    """The credit rule: outstanding (issued, unpaid) plus this order must not exceed the limit."""
    return outstanding_minor + total_minor <= limit_minor


def format_number(sequence: int) -> str:
    """Invoice number for the n-th invoice of the service: ``INV-000001``."""
    return f"{NUMBER_PREFIX}{sequence:06d}"


def check_payment(status: InvoiceStatus, amount_minor: int, total_minor: int) -> None:
    """Raise unless a payment of ``amount_minor`` settles an invoice in ``status``."""
    if status is InvoiceStatus.VOID:
        raise InvoiceNotPayable("the invoice is void and cannot be paid")
    if status is InvoiceStatus.PAID:
        raise InvoiceNotPayable("the invoice is already paid")
    if amount_minor != total_minor:
        raise WrongAmount(f"the payment must equal the invoice total {format_minor(total_minor)}")


def decide_void(status: InvoiceStatus) -> VoidDecision:
    """What voiding does to an invoice in ``status``; voiding never fails."""
    if status is InvoiceStatus.ISSUED:
        return VoidDecision.VOID
    if status is InvoiceStatus.PAID:
        return VoidDecision.REFUND
    return VoidDecision.IGNORE
