"""Deliberately broken parts for F9: the audit must catch what they do.

- ``python -m tests.chaos.unsafe relay SERVICE``: the outbox relay with publisher
  confirms off (what Dramatiq does by default): a publish "succeeds" once the
  bytes are written, so a network that swallows them loses events;
- ``dramatiq ops.worker:invoices tests.chaos.unsafe``: ``issue_invoice`` and its batch
  form ``issue_invoices`` replaced by the naive step (no dedupe key, no
  existing-invoice check, no account lock); with the unique index on
  ``invoices.order_id`` dropped, duplicates double invoices.

Never used outside the chaos tests.
"""

from __future__ import annotations

import sys
import uuid

import dramatiq

from invoices import models, store
from invoices.domain import InvoiceStatus, format_number
from invoices.events import InvoiceIssued
from ops.shared.persistence.database import unit_of_work
from ops.shared.values.clock import utcnow
from ops.shared.values.money import parse_amount


def naive_issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> None:
    with unit_of_work(models.database):
        sequence = store.take_numbers(1)
        invoice = models.Invoice.create(
            id=uuid.uuid4(),
            sequence=sequence,
            number=format_number(sequence),
            order_id=order_id,
            customer_id=customer_id,
            total_minor=parse_amount(total),
            currency=currency,
            status=InvoiceStatus.ISSUED.value,
            issued_at=utcnow(),
        )
        store.emit(InvoiceIssued(order_id, str(invoice.id), invoice.number))


def naive_issue_invoices(events: list[dict[str, object]]) -> None:
    for event in events:
        arguments = {key: value for key, value in event.items() if key != "trace_context"}
        naive_issue_invoice(**arguments)  # type: ignore[arg-type]


def relay_without_confirms(service_name: str) -> int:
    from ops import bootstrap, cli

    build = bootstrap.build_worker_broker

    def unconfirmed(*args, **kwargs):  # type: ignore[no-untyped-def]
        broker = build(*args, **kwargs)
        broker.confirm_delivery = False
        return broker

    bootstrap.build_worker_broker = unconfirmed
    return cli.main(["relay", service_name])


if __name__ == "__main__":
    _, command, name = sys.argv
    assert command == "relay", command
    sys.exit(relay_without_confirms(name))
else:
    broker = dramatiq.get_broker()
    if "issue_invoice" in broker.actors:
        broker.get_actor("issue_invoice").fn = naive_issue_invoice
    if "issue_invoices" in broker.actors:
        broker.get_actor("issue_invoices").fn = naive_issue_invoices
