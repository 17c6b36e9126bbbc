"""The orders service as the wiring sees it (``ops.services`` collects it)."""

from ops.shared.persistence.service import ServiceDescription
from orders import api, models, queries, service
from orders.migrations import DIRECTORY

DESCRIPTION = ServiceDescription(
    name="orders",
    database=models.database,
    migrations=DIRECTORY,
    outbox=models.OutboxEvent,
    idempotency=models.IdempotencyKey,
    dead_letters=models.DeadLetter,
    redeliveries=models.Redelivery,
    create_app=api.create_app,
    expire_overdue=service.expire_overdue,
    count_by_status=queries.count_by_status,
    oldest_pending_age=queries.oldest_pending_age,
)
