"""The run's final state as read back over HTTP, and the result of one check of it."""

from __future__ import annotations

from dataclasses import dataclass

from ops.demo.calls import invoices_of
from ops.demo.client import Item, parallel
from ops.demo.record import Run
from ops.demo.scenario import customer_orders


@dataclass(frozen=True)
class Check:
    """One consistency check and the offenders it found (none means PASS); ``skipped``
    says why it could not run (it then neither passes nor fails)."""

    name: str
    offenders: list[str]
    skipped: str | None = None


@dataclass(frozen=True)
class FinalState:
    """The run's orders (also as each customer's listing showed them) and, for each order,
    its invoices (None where they could not be read)."""

    orders: list[Item]
    invoices: dict[str, list[Item] | None]
    by_customer: dict[str, list[Item]]

    def all_invoices(self) -> list[Item]:
        """Every invoice of the run's orders."""
        return [i for invoices in self.invoices.values() for i in invoices or []]


def read_final_state(run: Run) -> FinalState | None:
    """Read every customer's orders with the customer's token, and each order's invoices
    with the operator's (who sees an invoice whatever customer it names); None if the
    orders cannot be read."""
    by_customer = customer_orders(run)
    if by_customer is None:
        return None
    orders = [order for page in by_customer.values() for order in page]
    ids = [order["id"] for order in orders]
    invoices = parallel(lambda i: invoices_of(run.endpoints, i, run.tokens.operator), ids)
    return FinalState(orders, dict(zip(ids, invoices, strict=True)), by_customer)
