"""Billing accounts: a customer's credit limit and what is outstanding against it.

An account row is created with the default limit the first time a customer is
seen (by an invoice step or an operator), and locked by every step that issues,
pays or voids for that customer, so the credit rule sees every issued invoice. The
row keeps the customer's outstanding total (issued, unpaid invoices), changed by
:func:`charge` in the same transaction as the invoice, so the credit check costs
one row whatever the customer's history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import peewee

from invoices.models import BillingAccount, database
from ops.shared.persistence import compiled
from ops.shared.persistence.database import is_postgres, unit_of_work
from ops.shared.values.clock import utcnow


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
    if stored is None:
        return Account(customer_id, policy.default_credit_limit_minor, 0)
    return Account(customer_id, stored.credit_limit_minor, stored.outstanding_minor)


def set_credit_limit(customer_id: str, limit_minor: int) -> Account:
    """Set the customer's credit limit, creating the account if needed."""
    with unit_of_work(database):
        account = locked_account(customer_id)
        account.credit_limit_minor = limit_minor
        account.updated_at = utcnow()
        account.save(only=[BillingAccount.credit_limit_minor, BillingAccount.updated_at])
        return Account(customer_id, limit_minor, account.outstanding_minor)


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


def locked_accounts(customer_ids: Iterable[str]) -> dict[str, BillingAccount]:
    """The accounts of ``customer_ids`` (created with the default limit if new), locked in
    ``customer_id`` order (so two batches never deadlock) until the caller's transaction
    ends. On PostgreSQL one insert and one select for all of them."""
    ordered = sorted(set(customer_ids))
    if not is_postgres(database):
        return {customer_id: locked_account(customer_id) for customer_id in ordered}
    now = utcnow()
    compiled.defer(
        database,
        _OPEN_ACCOUNTS,
        {
            "customer_ids": ordered,
            "credit_limit_minor": policy.default_credit_limit_minor,
            "now": now,
        },
    )
    rows = _LOCK_ACCOUNTS.execute(database, {"customer_ids": ordered}).fetchall()
    accounts = [compiled.row_of(BillingAccount, row) for row in rows]
    return {account.customer_id: account for account in accounts}  # type: ignore[attr-defined]


def charge(customer_id: str, delta_minor: int) -> None:
    """Add ``delta_minor`` to the customer's outstanding total (negative when an invoice is
    paid or voided). Call inside the unit of work that changes the invoice, with the
    account locked."""
    compiled.defer(database, _CHARGE, {"customer_id": customer_id, "delta": delta_minor})


# Statements of the hot path, compiled once (ops.shared.persistence.compiled).
_OPEN_ACCOUNT = compiled.Statement(
    lambda p: BillingAccount.insert(
        customer_id=p("customer_id"),
        credit_limit_minor=p("credit_limit_minor"),
        outstanding_minor=peewee.SQL("0"),
        created_at=p("created_at", BillingAccount.created_at),
        updated_at=p("updated_at", BillingAccount.updated_at),
    ).on_conflict_ignore()
)
# PostgreSQL only: every account of a batch at once.
_OPEN_ACCOUNTS = compiled.Statement(
    lambda p: peewee.SQL(
        "INSERT INTO billing_accounts"
        " (customer_id, credit_limit_minor, outstanding_minor, created_at, updated_at)"
        " SELECT c, %(credit_limit_minor)s::bigint, 0, %(now)s::timestamp, %(now)s::timestamp"
        " FROM unnest(%(customer_ids)s::text[]) AS c"
        " ON CONFLICT DO NOTHING"
    )
)
_LOCK_ACCOUNTS = compiled.Statement(
    lambda p: (
        BillingAccount.select()
        .where(BillingAccount.customer_id == peewee.fn.ANY(peewee.SQL("%(customer_ids)s::text[]")))
        .order_by(BillingAccount.customer_id)
        .for_update()
    )
)
_CHARGE = compiled.Statement(
    lambda p: BillingAccount.update(
        outstanding_minor=BillingAccount.outstanding_minor + p("delta")
    ).where(BillingAccount.customer_id == p("customer_id"))
)
_LOCK_ACCOUNT = compiled.Statement(
    lambda p: (
        BillingAccount.select().where(BillingAccount.customer_id == p("customer_id")).for_update()
        if p.postgres
        else BillingAccount.select().where(BillingAccount.customer_id == p("customer_id"))
    )
)
