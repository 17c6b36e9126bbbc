"""The naive worker: ``issue_invoice`` then ``confirm_order``, on Dramatiq's defaults.

Importing this module wires the process, as naive code does: it reads the
configuration, sets a RabbitMQ broker without publisher confirms (Dramatiq's
default) and with the default middleware, and points the tables at the two
databases. Run the worker from the repository root with::

    dramatiq tests.bench.naive.actors --processes 1 --threads 8
"""

from __future__ import annotations

import uuid

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from tests.bench.naive import load_config, schema

config = load_config()
broker = RabbitmqBroker(url=config.broker_url, confirm_delivery=False)
dramatiq.set_broker(broker)
schema.connect(config)


@dramatiq.actor(queue_name="invoices")
def issue_invoice(order_id: str, customer_id: str, total_minor: int, currency: str) -> None:
    """Insert the order's invoice under the next number, then ask for the order's confirmation.

    A redelivered message fails on the unique ``order_id`` and is retried until
    Dramatiq gives up: nothing dedupes it.
    """
    sequence = schema.next_invoice_sequence()
    invoice = schema.Invoice.create(
        id=uuid.uuid4(),
        sequence=sequence,
        number=f"INV-{sequence:06d}",
        order_id=order_id,
        customer_id=customer_id,
        total_minor=total_minor,
        currency=currency,
        status="issued",
        issued_at=schema.utcnow(),
    )
    confirm_order.send(order_id, str(invoice.id), invoice.number)


@dramatiq.actor(queue_name="orders")
def confirm_order(order_id: str, invoice_id: str, invoice_number: str) -> None:
    """Mark the order confirmed with its invoice, whatever its status was."""
    now = schema.utcnow()
    schema.Order.update(
        status="confirmed",
        invoice_id=uuid.UUID(invoice_id),
        invoice_number=invoice_number,
        updated_at=now,
        settled_at=now,
    ).where(schema.Order.id == uuid.UUID(order_id)).execute()
