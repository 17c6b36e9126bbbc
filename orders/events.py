"""Events the orders service publishes through its outbox (past tense, primitives only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class OrderPlaced:
    """A customer placed an order; the invoices side should issue its invoice."""

    order_id: str
    customer_id: str
    total: str
    currency: str


@dataclass(frozen=True)
class OrderCancelled:
    """An order was cancelled; any invoice it has, or gets later, must be voided."""

    order_id: str
    customer_id: str
    reason: str


Event = OrderPlaced | OrderCancelled


def payload(event: Event) -> dict[str, Any]:
    """The event's fields as the JSON payload stored in the outbox."""
    return asdict(event)
