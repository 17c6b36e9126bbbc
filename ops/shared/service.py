"""What a service consists of, as the wiring needs it: one frozen description per service.

Each service declares its own (``orders.description``, ``invoices.description``);
``ops.services`` collects them. A description is data: the service's tables and
database, and the few functions of its own the wiring calls (all optional).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import falcon
    import peewee

    from ops.shared.dead_letters import DeadLetterRecord
    from ops.shared.dedupe import ProcessedMessageRecord
    from ops.shared.idempotency import IdempotencyKeyRecord
    from ops.shared.outbox import OutboxRecord
    from ops.shared.redeliveries import RedeliveryRecord


@dataclass(frozen=True)
class ServiceDescription:
    """A service: its name (also its queue's), database, kernel tables, migrations and
    the factory of its HTTP app.

    The hooks belong to the service that starts the saga: ``expire_overdue`` cancels
    what is older than a timeout in seconds (the relay's saga-deadline chore);
    ``count_by_status`` and ``oldest_pending_age`` feed its gauges.
    """

    name: str
    database: peewee.DatabaseProxy
    migrations: Path
    outbox: type[OutboxRecord]
    processed: type[ProcessedMessageRecord]
    idempotency: type[IdempotencyKeyRecord]
    dead_letters: type[DeadLetterRecord]
    redeliveries: type[RedeliveryRecord]
    create_app: Callable[..., falcon.App]
    expire_overdue: Callable[[float], object] | None = None
    count_by_status: Callable[[], Mapping[str, int]] | None = None
    oldest_pending_age: Callable[[], float] | None = None
