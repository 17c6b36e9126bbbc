"""The saga end to end on the stub broker and SQLite: every outcome and its compensation."""

from __future__ import annotations

import json

import dramatiq
import pytest

from actors import catalogue
from invoices import service as invoices
from invoices.models import CancelledOrder, Invoice
from invoices.models import DeadLetter as InvoiceDeadLetter
from orders import service as orders
from orders.domain import Line, NewOrder, OrderNotCancellable
from orders.models import OutboxEvent as OrdersOutbox
from orders.queries import get_order, timeline

from .conftest import StubSystem


def place(customer: str = "c1", price_minor: int = 1234, quantity: int = 2) -> str:
    order = orders.place_order(NewOrder(customer, "EUR", (Line("SKU-1", quantity, price_minor),)))
    return str(order.id)


def test_an_order_within_credit_is_confirmed_with_one_invoice(stub_system: StubSystem) -> None:
    # Given an order within the customer's credit
    order_id = place()
    # When the saga runs
    stub_system.drain()
    # Then the order is confirmed and carries the number of its single invoice
    order = get_order(order_id)
    invoice = Invoice.get(Invoice.order_id == order_id)
    assert order.status == "confirmed"
    assert (order.invoice_id, order.invoice_number) == (invoice.id, "INV-000001")
    assert (invoice.total_minor, invoice.currency, invoice.status) == (2468, "EUR", "issued")


def test_an_order_over_the_credit_limit_is_cancelled_as_credit_rejected(
    stub_system: StubSystem,
) -> None:
    # Given a customer with 1000.00 credit and 800.00 outstanding
    place("c1", price_minor=80000, quantity=1)
    stub_system.drain()
    # When an order of 300.00 arrives
    order_id = place("c1", price_minor=30000, quantity=1)
    stub_system.drain()
    # Then it is rejected without an invoice, and no invoice number is used
    order = get_order(order_id)
    assert (order.status, order.cancel_reason) == ("cancelled", "credit_rejected")
    assert Invoice.select().where(Invoice.order_id == order_id).count() == 0
    assert [i.number for i in Invoice.select()] == ["INV-000001"]


def test_paid_invoices_free_the_credit_they_used(stub_system: StubSystem) -> None:
    # Given an invoice of 800.00 that is paid
    first = place("c1", price_minor=80000, quantity=1)
    stub_system.drain()
    invoices.pay_invoice(get_order(first).invoice_id, "800.00", None)
    # When a second order of 300.00 arrives
    second = place("c1", price_minor=30000, quantity=1)
    stub_system.drain()
    # Then it is within credit again, and the first order is paid
    assert get_order(first).status == "paid"
    assert get_order(second).status == "confirmed"


def test_cancelling_a_confirmed_order_voids_its_invoice(stub_system: StubSystem) -> None:
    # Given a confirmed order
    order_id = place()
    stub_system.drain()
    # When the customer cancels it
    orders.cancel_order_by_customer(order_id, None)
    stub_system.drain()
    # Then the invoice is void and keeps its number
    invoice = Invoice.get(Invoice.order_id == order_id)
    assert get_order(order_id).cancel_reason == "customer_cancelled"
    assert (invoice.status, invoice.void_reason, invoice.number) == (
        "void",
        "customer_cancelled",
        "INV-000001",
    )


def test_a_void_that_overtakes_the_issue_bars_the_invoice(stub_system: StubSystem) -> None:
    # Given an order cancelled before its invoice was issued
    order_id = place()
    orders.cancel_order_by_customer(order_id, None)
    # When OrderCancelled reaches the invoices side before OrderPlaced (say, after a retry)
    cancelled = OrdersOutbox.get(
        (OrdersOutbox.aggregate_id == order_id) & (OrdersOutbox.event_type == "OrderCancelled")
    )
    for message in catalogue.messages_for(
        cancelled.event_type, str(cancelled.event_id), json.loads(cancelled.payload)
    ):
        stub_system.broker.enqueue(message)
    stub_system.broker.join("invoices")
    stub_system.worker.join()
    stub_system.drain()
    # Then no invoice is ever issued (the void left a tombstone that issue honours)
    assert Invoice.select().where(Invoice.order_id == order_id).count() == 0
    assert CancelledOrder.get_or_none(CancelledOrder.order_id == order_id) is not None
    assert get_order(order_id).status == "cancelled"


def test_an_invoice_issued_after_the_cancellation_is_voided(stub_system: StubSystem) -> None:
    # Given an invoice issued while the orders side had already cancelled the order
    order_id = place()
    stub_system.relays["orders"].run_once()  # OrderPlaced out
    orders.cancel_order_by_customer(order_id, None)  # OrderCancelled waits in the outbox
    stub_system.broker.join("invoices")
    stub_system.worker.join()
    assert Invoice.get(Invoice.order_id == order_id).status == "issued"
    # When the rest of the saga runs
    stub_system.drain()
    # Then the invoice is void and the order is still cancelled (not confirmed)
    assert Invoice.get(Invoice.order_id == order_id).status == "void"
    assert get_order(order_id).status == "cancelled"


def test_paying_an_invoice_marks_the_order_paid(stub_system: StubSystem) -> None:
    # Given a confirmed order
    order_id = place()
    stub_system.drain()
    invoice_id = get_order(order_id).invoice_id
    # When its invoice is paid with the exact total
    invoices.pay_invoice(invoice_id, "24.68", None)
    stub_system.drain()
    # Then invoice and order are paid, and a paid order refuses cancellation
    assert Invoice.get_by_id(invoice_id).status == "paid"
    assert get_order(order_id).status == "paid"
    with pytest.raises(OrderNotCancellable):
        orders.cancel_order_by_customer(order_id, None)


def test_a_payment_that_races_a_cancellation_is_refunded(stub_system: StubSystem) -> None:
    # Given a confirmed order whose customer cancels it ...
    order_id = place()
    stub_system.drain()
    orders.cancel_order_by_customer(order_id, None)
    # ... while the invoice is paid before the void arrives
    invoices.pay_invoice(get_order(order_id).invoice_id, "24.68", None)
    stub_system.drain()
    # Then the cancellation wins: the invoice ends void (a refund is owed), the order cancelled
    invoice = Invoice.get(Invoice.order_id == order_id)
    assert (invoice.status, invoice.paid_at is not None) == ("void", True)
    assert get_order(order_id).status == "cancelled"


def test_a_pending_order_past_the_deadline_expires_and_its_late_invoice_is_voided(
    stub_system: StubSystem,
) -> None:
    # Given a pending order whose OrderPlaced is still in the outbox
    order_id = place()
    # When the deadline passes before the invoice is issued
    assert orders.expire_overdue(timeout_seconds=0) == 1
    stub_system.drain()
    # Then the order is cancelled as expired and no live invoice exists
    order = get_order(order_id)
    assert (order.status, order.cancel_reason) == ("cancelled", "expired")
    assert (
        Invoice.select().where((Invoice.order_id == order_id) & (Invoice.status != "void")).count()
        == 0
    )


def test_the_deadline_leaves_settled_orders_alone(stub_system: StubSystem) -> None:
    order_id = place()
    stub_system.drain()
    assert orders.expire_overdue(timeout_seconds=0) == 0
    assert get_order(order_id).status == "confirmed"


def test_the_same_message_delivered_twice_issues_one_invoice(stub_system: StubSystem) -> None:
    # Given the OrderPlaced message of an order
    order_id = place()
    row = OrdersOutbox.get(OrdersOutbox.aggregate_id == order_id)
    (message,) = catalogue.messages_for(row.event_type, str(row.event_id), json.loads(row.payload))
    # When the broker delivers it three times
    for _ in range(3):
        stub_system.broker.enqueue(message)
    stub_system.drain()
    # Then exactly one invoice exists and the order is confirmed once
    assert Invoice.select().where(Invoice.order_id == order_id).count() == 1
    assert get_order(order_id).status == "confirmed"
    assert [i.number for i in Invoice.select()] == ["INV-000001"]


def test_a_late_invoice_event_never_moves_a_paid_order_back(stub_system: StubSystem) -> None:
    order_id = place()
    stub_system.drain()
    order = get_order(order_id)
    invoices.pay_invoice(order.invoice_id, "24.68", None)
    stub_system.drain()
    # When an InvoiceIssued arrives again with a new dedupe key
    outcome = orders.confirm_order(
        order_id, str(order.invoice_id), order.invoice_number, dedupe_key="replayed-late"
    )
    # Then it is ignored
    assert outcome == "ignore"
    assert get_order(order_id).status == "paid"


def test_exhausted_retries_cancel_the_order_as_invoice_failed(
    stub_system: StubSystem,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an invoices database that fails every issue with a connection error
    import peewee

    def broken(*args: object, **kwargs: object) -> str:
        raise peewee.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(invoices, "issue_invoice", broken)
    order_id = place()
    # When the saga runs and retries are exhausted
    stub_system.drain()
    # Then the order is cancelled as invoice_failed and the failure is recorded
    order = get_order(order_id)
    assert (order.status, order.cancel_reason) == ("cancelled", "invoice_failed")
    letter = InvoiceDeadLetter.get(InvoiceDeadLetter.order_id == order_id)
    assert letter.actor_name == "issue_invoice"
    assert letter.attempts == stub_system.settings.max_retries + 1
    assert "OperationalError" in letter.error
    assert len(stub_system.broker.dead_letters) == 1


def test_a_malformed_message_fails_at_once_and_is_recorded(stub_system: StubSystem) -> None:
    # Given a message with an amount that is not an amount
    message = dramatiq.Message(
        queue_name="invoices",
        actor_name="issue_invoice",
        args=(),
        kwargs={
            "order_id": "o-1",
            "customer_id": "c1",
            "total": "1.234",
            "currency": "EUR",
            "dedupe_key": "k-1",
        },
        options={},
    )
    # When it is processed
    stub_system.broker.enqueue(message)
    stub_system.drain()
    # Then it is not retried: one attempt, recorded as a dead letter
    letter = InvoiceDeadLetter.get(InvoiceDeadLetter.message_id == message.message_id)
    assert letter.attempts == 1
    assert "AmountError" in letter.error


def test_invoice_numbers_stay_gapless_across_rejections_and_voids(
    stub_system: StubSystem,
) -> None:
    ids = [place("c1", price_minor=10000, quantity=1) for _ in range(5)]
    ids.append(place("c2", price_minor=200000, quantity=1))  # over credit: rejected
    stub_system.drain()
    orders.cancel_order_by_customer(ids[1], None)
    stub_system.drain()
    numbers = sorted(i.number for i in Invoice.select())
    assert numbers == [f"INV-{n:06d}" for n in range(1, 6)]


def test_the_timeline_records_each_step_with_its_outcome(stub_system: StubSystem) -> None:
    # Given an order that is confirmed, paid, and then hit by a late duplicate-free replay
    order_id = place()
    stub_system.drain()
    order = get_order(order_id)
    invoices.pay_invoice(order.invoice_id, "24.68", None)
    stub_system.drain()
    orders.confirm_order(
        order_id, str(order.invoice_id), order.invoice_number, dedupe_key="late-replay"
    )
    # Then the timeline tells the story in order
    steps = [(step.event, step.outcome) for step in timeline(order_id)]
    assert steps == [
        ("OrderPlaced", "pending"),
        ("InvoiceIssued", "confirmed"),
        ("InvoicePaid", "paid"),
        ("InvoiceIssued", "ignored"),
    ]


def test_the_timeline_shows_why_an_order_was_cancelled(stub_system: StubSystem) -> None:
    order_id = place("c1", price_minor=500000, quantity=1)  # over the 1000.00 limit
    stub_system.drain()
    assert [(s.event, s.outcome, s.detail) for s in timeline(order_id)][-1] == (
        "InvoiceRejected",
        "cancelled",
        "credit_rejected",
    )
