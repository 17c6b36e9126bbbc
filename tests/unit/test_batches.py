"""Batch messages on the stub broker and SQLite: one message, many events, every guarantee."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from actors import catalogue
from actors.batches import SPLIT_AFTER_RETRIES
from actors.outbound import plan
from invoices import accounts
from invoices.models import DeadLetter as InvoiceDeadLetter
from invoices.models import Invoice, ProcessedMessage
from ops.shared.values.clock import utcnow
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.models import OutboxEvent as OrdersOutbox
from orders.queries import get_order

from .conftest import StubSystem


def place(customer: str = "c1", price_minor: int = 1234) -> str:
    order = orders.place_order(NewOrder(customer, "EUR", (Line("SKU-1", 1, price_minor),)))
    return str(order.id)


def taken_placed_events(*order_ids: str) -> list[catalogue.BatchEvent]:
    """The ``OrderPlaced`` events of ``order_ids``, marked published so that only the test
    sends them."""
    rows = {
        row.aggregate_id: row
        for row in OrdersOutbox.select().where(
            (OrdersOutbox.event_type == "OrderPlaced") & OrdersOutbox.aggregate_id.in_(order_ids)
        )
    }
    OrdersOutbox.update(published_at=utcnow()).where(
        OrdersOutbox.aggregate_id.in_(order_ids)
    ).execute()
    return [
        catalogue.BatchEvent(str(rows[o].event_id), json.loads(rows[o].payload), None)
        for o in order_ids
    ]


def send_issue_batch(
    stub_system: StubSystem, events: list[catalogue.BatchEvent], **options: object
) -> None:
    """Send one ``issue_invoices`` message carrying ``events``, then run the saga out."""
    route = catalogue.ROUTES["OrderPlaced"][0]
    message = catalogue.batch_message(route, "OrderPlaced", events)
    stub_system.broker.enqueue(message.copy(options={**message.options, **options}))
    stub_system.broker.join("invoices", fail_fast=False, timeout=10_000)
    stub_system.worker.join()
    stub_system.drain()


def test_the_relay_sends_waiting_events_of_one_step_as_one_batch_message(
    stub_system: StubSystem, caplog: pytest.LogCaptureFixture
) -> None:
    # Given three orders placed while the relay was not running
    placed = [place(f"c{n}") for n in range(3)]
    # When the saga runs
    with caplog.at_level(logging.INFO, logger="actors"):
        stub_system.drain()
    # Then one issue_invoices message issued all three invoices, and all are confirmed
    assert "issue_invoices batch_size=3" in caplog.text
    assert [get_order(o).status for o in placed] == ["confirmed"] * 3
    assert sorted(i.number for i in Invoice.select()) == [f"INV-00000{n}" for n in (1, 2, 3)]


def test_a_lone_event_travels_as_a_plain_message(databases) -> None:
    # Given one OrderPlaced and one OrderCancelled in the outbox
    place()
    rows = list(OrdersOutbox.select().order_by(OrdersOutbox.seq))
    # When the relay plans its messages
    planned = plan(rows)
    # Then the lone event is the plain issue_invoice message, in its own trace
    assert [p.message.actor_name for p in planned] == ["issue_invoice"]
    assert planned[0].seqs == [rows[0].seq]


def test_the_relay_caps_a_batch_and_keeps_other_steps_in_order(databases) -> None:
    # Given more OrderPlaced events than a batch carries, and a cancellation among them
    for _ in range(catalogue.MAX_BATCH + 1):
        place()
    cancelled = place()
    orders.cancel_order_by_customer(cancelled, None)
    rows = list(OrdersOutbox.select().order_by(OrdersOutbox.seq))
    # When the relay plans its messages
    planned = plan(rows)
    # Then a full batch, a second batch with the rest, then the cancellation's void, each
    # where its first event was
    actors = [p.message.actor_name for p in planned]
    assert actors == ["issue_invoices", "issue_invoices", "void_invoice"]
    sizes = [len(p.message.kwargs.get("events", [])) for p in planned]
    assert sizes == [catalogue.MAX_BATCH, 2, 0]
    assert sorted(seq for p in planned for seq in p.seqs) == [row.seq for row in rows]


def test_a_batch_with_a_duplicate_event_applies_it_once(stub_system: StubSystem) -> None:
    # Given a batch that carries one event twice, and a second one already applied alone
    first, second = place(), place()
    one, two = taken_placed_events(first, second)
    send_issue_batch(stub_system, [two])  # a lone event in a batch message
    # When the batch [one, one, two] arrives
    send_issue_batch(stub_system, [one, one, two])
    # Then each order has exactly one invoice, numbered without a gap, and one dedupe key
    assert Invoice.select().where(Invoice.order_id == first).count() == 1
    assert Invoice.select().where(Invoice.order_id == second).count() == 1
    assert sorted(i.sequence for i in Invoice.select()) == [1, 2]
    claimed = ProcessedMessage.select().where(ProcessedMessage.consumer == "issue_invoice")
    assert claimed.count() == 2
    assert [get_order(o).status for o in (first, second)] == ["confirmed", "confirmed"]


def test_a_batch_decides_credit_in_order_and_numbers_only_what_it_issues(
    stub_system: StubSystem,
) -> None:
    # Given a customer with 1000.00 of credit and three orders of 600, 500 and 300
    accounts.set_credit_limit("c1", 100_000)
    placed = [place("c1", price) for price in (60_000, 50_000, 30_000)]
    # When they arrive in one batch
    send_issue_batch(stub_system, taken_placed_events(*placed))
    # Then the first and third are issued, in order and gapless, and the second rejected
    statuses = [(get_order(o).status, get_order(o).cancel_reason) for o in placed]
    assert statuses == [("confirmed", None), ("cancelled", "credit_rejected"), ("confirmed", None)]
    numbers = {i.order_id: i.number for i in Invoice.select()}
    assert numbers == {placed[0]: "INV-000001", placed[2]: "INV-000002"}
    # And the account's outstanding total is what the issued invoices add up to
    assert accounts.get_account("c1").outstanding_minor == 90_000


def test_a_batch_where_one_event_fails_for_good_dead_letters_that_event_alone(
    stub_system: StubSystem,
) -> None:
    # Given a batch whose second event is malformed (an amount no retry can parse)
    placed = [place(), place(), place()]
    events = taken_placed_events(*placed)
    broken = catalogue.BatchEvent(events[1].event_id, {**events[1].payload, "total": "1.2.3"}, None)
    # When it arrives
    send_issue_batch(stub_system, [events[0], broken, events[2]])
    # Then the others are issued and confirmed
    assert [get_order(o).status for o in (placed[0], placed[2])] == ["confirmed", "confirmed"]
    # And the broken one alone is dead-lettered, as a plain issue_invoice, and its order
    # cancelled as invoice_failed; the batch itself is not a dead letter
    letters = list(InvoiceDeadLetter.select())
    assert [(d.actor_name, d.order_id) for d in letters] == [("issue_invoice", placed[1])]
    assert (get_order(placed[1]).status, get_order(placed[1]).cancel_reason) == (
        "cancelled",
        "invoice_failed",
    )


def test_a_retried_batch_runs_its_events_one_by_one(
    stub_system: StubSystem, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch that already failed as a batch (retried, or redelivered after a crash)
    # and one of its events applied meanwhile
    placed = [place(), place()]
    events = taken_placed_events(*placed)
    send_issue_batch(stub_system, [events[0]])
    # When it arrives again
    with caplog.at_level(logging.INFO, logger="actors"):
        send_issue_batch(stub_system, events, retries=SPLIT_AFTER_RETRIES)
    # Then it is split into plain messages: the applied one is a duplicate, the other issued
    assert "split into plain messages" in caplog.text
    assert "batch_size" not in caplog.text
    assert "outcome=duplicate" in caplog.text
    assert [get_order(o).status for o in placed] == ["confirmed", "confirmed"]
    assert Invoice.select().count() == 2
    assert Decimal(accounts.get_account("c1").outstanding_minor) == 2 * 1234
