"""Billing accounts: a customer's credit limit and what is outstanding against it.

An account row is created with the default limit the first time a customer is
seen (by an invoice step or an operator), and locked by every step that issues
or voids for that customer, so the credit rule sees every issued invoice.
"""

from __future__ import annotations

from dataclasses import dataclass

from invoices.models import BillingAccount, database
from invoices.queries import outstanding_minor
from ops.shared import compiled
from ops.shared.clock import utcnow
from ops.shared.database import unit_of_work


@dataclass
class Policy:
    """Service-wide settings, set once by the wiring."""

    default_credit_limit_minor: int = 1_000_000


policy = Policy()


def configure(default_credit_limit_minor: int) -> None:
    """Set the credit limit given to a customer's account on first sight."""
    policy.default_credit_limit_minor = default_credit_limit_minor


@dataclass(frozen=True)
class Account:
    """A customer's credit position."""

    customer_id: str
    credit_limit_minor: int
    outstanding_minor: int

    @property
    def available_minor(self) -> int:
        return self.credit_limit_minor - self.outstanding_minor


def get_account(customer_id: str) -> Account:
    """The customer's credit position (the default limit if never seen; nothing is written)."""
    stored = BillingAccount.get_or_none(BillingAccount.customer_id == customer_id)
    limit = stored.credit_limit_minor if stored else policy.default_credit_limit_minor
    return Account(customer_id, limit, outstanding_minor(customer_id))


def set_credit_limit(customer_id: str, limit_minor: int) -> Account:
    """Set the customer's credit limit, creating the account if needed."""
    with unit_of_work(database):
        account = locked_account(customer_id)
        account.credit_limit_minor = limit_minor
        account.updated_at = utcnow()
        account.save()
        return Account(customer_id, limit_minor, outstanding_minor(customer_id))


def locked_account(customer_id: str) -> BillingAccount:
    """The customer's account row, created with the default limit if new, locked (on
    PostgreSQL) until the caller's transaction ends. Call inside a unit of work."""
    now = utcnow()
    values = {
        "customer_id": customer_id,
        "credit_limit_minor": policy.default_credit_limit_minor,
        "created_at": now,
        "updated_at": now,
    }
    compiled.defer(database, _OPEN_ACCOUNT, values)
    row = _LOCK_ACCOUNT.first(database, {"customer_id": customer_id})
    assert row is not None  # inserted above
    return compiled.row_of(BillingAccount, row)  # type: ignore[return-value]


# Statements of the hot path, compiled once (ops.shared.compiled).
_OPEN_ACCOUNT = compiled.Statement(
    lambda p: BillingAccount.insert(
        customer_id=p("customer_id"),
        credit_limit_minor=p("credit_limit_minor"),
        created_at=p("created_at", BillingAccount.created_at),
        updated_at=p("updated_at", BillingAccount.updated_at),
    ).on_conflict_ignore()
)
_LOCK_ACCOUNT = compiled.Statement(
    lambda p: (
        BillingAccount.select().where(BillingAccount.customer_id == p("customer_id")).for_update()
        if p.postgres
        else BillingAccount.select().where(BillingAccount.customer_id == p("customer_id"))
    )
)
