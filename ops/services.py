"""Every service the wiring runs, in one place: each one's description
(``orders.description``, ``invoices.description``) with its queue's actors, and the HTTP
fronts. Everything in ``ops`` takes its services from here.

The names are plain data, so the command line (and the Pulumi program, which reads its
commands) lists them without importing a service; the rest is imported on first use.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.broker import Consumer
    from ops.shared.persistence.service import ServiceDescription

NAMES = ("orders", "invoices")  # each service's package, queue and database
FRONTS = (*NAMES, "gateway", "audit")  # the HTTP apps


@functools.cache
def consumers() -> dict[str, Consumer]:
    """Each service's description and its queue's actor module, by name, in ``NAMES`` order."""
    from actors import invoicing, ordering
    from actors.broker import Consumer
    from invoices.description import DESCRIPTION as INVOICES
    from orders.description import DESCRIPTION as ORDERS

    found = {c.service.name: c for c in (Consumer(ORDERS, ordering), Consumer(INVOICES, invoicing))}
    if tuple(found) != NAMES:
        raise RuntimeError(f"ops.services.NAMES {NAMES} do not match the descriptions {found}")
    return found


def descriptions() -> list[ServiceDescription]:
    """Every service's description, in ``NAMES`` order."""
    return [consumer.service for consumer in consumers().values()]


def described(name: str) -> ServiceDescription:
    """The description of the service called ``name`` (KeyError for another name)."""
    return consumers()[name].service
