"""The relay chore that refreshes orderflow's gauges from a service's database.

Counters and histograms are observed where things happen; what is a state rather than
an event (orders per status, outbox backlog and lag, unreplayed dead letters, the
oldest pending order) is read every few seconds by the service's relay, the one
process per database that runs anyway, and set on its gauges.
"""

from __future__ import annotations

from collections.abc import Callable

from invoices import models as invoices_models
from ops.shared import dead_letters, metrics, outbox
from ops.shared.relay import Chore
from orders import models as orders_models
from orders import queries as orders_queries

INTERVAL = 5.0  # seconds between refreshes; Prometheus scrapes every 15 s


def refresh_orders(saga_timeout: float) -> None:
    """Orders per status, the oldest pending order, the orders outbox and dead letters."""
    metrics.set_orders(orders_queries.count_by_status())
    metrics.set_pending("orders", orders_queries.oldest_pending_age(), saga_timeout)
    metrics.set_outbox("orders", *orders_queries.outbox_backlog())
    metrics.set_dead_letters("orders", dead_letters.unreplayed(orders_models.DeadLetter))


def refresh_invoices() -> None:
    """The invoices outbox and dead letters."""
    metrics.set_outbox("invoices", *outbox.backlog(invoices_models.OutboxEvent))
    metrics.set_dead_letters("invoices", dead_letters.unreplayed(invoices_models.DeadLetter))


def chore(service: str, saga_timeout: float) -> Chore:
    """The gauge chore of ``service``'s relay."""
    refresh: Callable[[], None] = {
        "orders": lambda: refresh_orders(saga_timeout),
        "invoices": refresh_invoices,
    }[service]
    return Chore("refresh-gauges", INTERVAL, refresh)
