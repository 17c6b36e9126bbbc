"""Every service the wiring runs, in one place: each one's description (``orders.description``,
``invoices.description``) with its queue's actors, and the HTTP fronts. Everything in ``ops``
takes its services from here."""

from __future__ import annotations

from actors import invoicing, ordering
from actors.broker import Consumer
from invoices.description import DESCRIPTION as INVOICES
from ops.shared.persistence.service import ServiceDescription
from orders.description import DESCRIPTION as ORDERS

CONSUMERS = {c.service.name: c for c in (Consumer(ORDERS, ordering), Consumer(INVOICES, invoicing))}
SERVICES = tuple(consumer.service for consumer in CONSUMERS.values())
NAMES = tuple(CONSUMERS)
FRONTS = (*NAMES, "gateway", "audit")  # the HTTP apps


def described(name: str) -> ServiceDescription:
    """The description of the service called ``name`` (KeyError for another name)."""
    return CONSUMERS[name].service
