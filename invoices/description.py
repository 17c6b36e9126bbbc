"""The invoices service as the wiring sees it (``ops.services`` collects it)."""

from invoices import api, models
from invoices.migrations import DIRECTORY
from ops.shared.persistence.service import ServiceDescription

DESCRIPTION = ServiceDescription(
    name="invoices",
    database=models.database,
    migrations=DIRECTORY,
    outbox=models.OutboxEvent,
    idempotency=models.IdempotencyKey,
    dead_letters=models.DeadLetter,
    redeliveries=models.Redelivery,
    create_app=api.create_app,
)
