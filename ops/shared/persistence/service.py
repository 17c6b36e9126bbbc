"""What a service consists of, as the wiring needs it: data, one frozen description per
service, declared next to it (``orders.description``) and collected in ``ops.services``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import peewee

from ops.shared.persistence.dead_letters import DeadLetterRecord
from ops.shared.persistence.idempotency import IdempotencyKeyRecord
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.redeliveries import RedeliveryRecord

if TYPE_CHECKING:  # the app factory's type only: the persistence layer runs no web code
    import falcon


@dataclass(frozen=True)
class ServiceDescription:
    """A service: its name (its queue's too), database, kernel tables, migrations and HTTP
    app factory; the service that starts the saga adds its deadline (``expire_overdue``:
    cancel what is older than a timeout in seconds) and what its gauges count."""

    name: str
    database: peewee.DatabaseProxy
    migrations: Path
    outbox: type[OutboxRecord]
    idempotency: type[IdempotencyKeyRecord]
    dead_letters: type[DeadLetterRecord]
    redeliveries: type[RedeliveryRecord]
    create_app: Callable[..., falcon.App]
    expire_overdue: Callable[[float], object] | None = None
    count_by_status: Callable[[], Mapping[str, int]] | None = None
    oldest_pending_age: Callable[[], float] | None = None
