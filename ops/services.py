"""Every service the wiring runs, in one place: each one's description (``orders.description``,
``invoices.description``) with the actors of its queue, and the HTTP fronts.

Everything in ``ops`` takes its services from here.
"""

from __future__ import annotations

from actors import invoicing, ordering
from actors.broker import Consumer
from invoices.description import DESCRIPTION as INVOICES
from ops.shared.service import ServiceDescription
from orders.description import DESCRIPTION as ORDERS

CONSUMERS = (Consumer(ORDERS, ordering), Consumer(INVOICES, invoicing))
SERVICES = tuple(consumer.service for consumer in CONSUMERS)
NAMES = tuple(service.name for service in SERVICES)
FRONTS = (*NAMES, "gateway", "audit")  # the HTTP apps
_CONSUMERS = {consumer.service.name: consumer for consumer in CONSUMERS}


def consumer(name: str) -> Consumer:
    """The service called ``name`` with its queue's actors (KeyError for another name)."""
    return _CONSUMERS[name]


def described(name: str) -> ServiceDescription:
    """The description of the service called ``name`` (KeyError for another name)."""
    return _CONSUMERS[name].service
