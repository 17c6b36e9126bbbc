"""The relay chore that refreshes orderflow's gauges from a service's database.

Counters and histograms are observed where things happen; what is a state rather than
an event (orders per status, outbox backlog and lag, unreplayed dead letters, the
oldest pending order) is read every few seconds by the service's relay, the one
process per database that runs anyway, and set on its gauges.
"""

from __future__ import annotations

from ops.shared.persistence import dead_letters, outbox
from ops.shared.persistence.relay import Chore
from ops.shared.persistence.service import ServiceDescription
from ops.shared.telemetry import metrics

INTERVAL = 5.0  # seconds between refreshes; Prometheus scrapes every 15 s


def reading(service: ServiceDescription) -> tuple[int, float | None, int]:
    """The service's outbox backlog (events, age in seconds of the oldest) and its
    unreplayed dead letters."""
    return (*outbox.backlog(service.outbox), dead_letters.unreplayed(service.dead_letters))


def refresh(service: ServiceDescription, saga_timeout: float) -> None:
    """The service's outbox and dead letters; orders per status and the oldest pending
    order where the service counts them."""
    if service.count_by_status is not None:
        metrics.set_orders(service.count_by_status())
    if service.oldest_pending_age is not None:
        metrics.set_pending(service.name, service.oldest_pending_age(), saga_timeout)
    pending, oldest, unreplayed = reading(service)
    metrics.set_outbox(service.name, pending, oldest)
    metrics.set_dead_letters(service.name, unreplayed)


def chore(service: ServiceDescription, saga_timeout: float) -> Chore:
    """The gauge chore of ``service``'s relay."""
    return Chore("refresh-gauges", INTERVAL, lambda: refresh(service, saga_timeout))
