"""The consistency audit: a settled system passes, and each broken invariant is named."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid

import pytest

from invoices.models import DeadLetter as InvoiceDeadLetter
from invoices.models import Invoice, InvoiceCounter
from ops import audit
from ops.audit import run_audit
from ops.settings import Settings
from ops.shared.persistence import dead_letters
from ops.shared.values.clock import utcnow
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.models import Order
from orders.models import OutboxEvent as OrdersOutbox

from .conftest import StubSystem

CODES = ["I1", "I2", "I3", "I4", "I5", "I6", "I7"]


def place(customer: str = "c1", price_minor: int = 1234) -> str:
    order = orders.place_order(NewOrder(customer, "EUR", (Line("SKU-1", 2, price_minor),)))
    return str(order.id)


def ago(seconds: float) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=seconds)


def settled_system(stub_system: StubSystem, count: int = 3) -> list[str]:
    """``count`` confirmed orders with invoices INV-000001.. in order."""
    order_ids = []
    for _ in range(count):
        order_ids.append(place())
        stub_system.drain()
    return order_ids


def invoice_of(order_id: str) -> Invoice:
    return Invoice.get(Invoice.order_id == order_id)


def assert_only_fails(report: audit.AuditReport, code: str, offender: str) -> None:
    assert report.failed() == [code], report.render_text()
    result = report.result(code)
    assert (result.count, result.offenders) == (1, [offender])


def test_a_settled_system_passes_all_seven_invariants(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given confirmed, credit-rejected and customer-cancelled orders after the saga
    confirmed = settled_system(stub_system, 2)
    place("c2", price_minor=80_000)  # 1600.00: over the credit limit, rejected
    orders.cancel_order_by_customer(confirmed[0], None)
    stub_system.drain()
    # When the audit runs
    report = run_audit(settings, broker_depth={"orders.XQ": 0, "invoices.XQ": 0})
    # Then every invariant holds, in order, with no offenders
    assert report.ok, report.render_text()
    assert [result.code for result in report.results] == CODES
    assert all(result.count == 0 and result.offenders == [] for result in report.results)
    # And the report renders for people and for machines
    text = report.render_text()
    assert text.count("PASS") == 7
    assert "all invariants hold" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert [item["code"] for item in data["invariants"]] == CODES


def test_an_empty_system_passes_every_invariant(settings: Settings, databases: dict) -> None:
    assert run_audit(settings).ok


def test_an_order_pending_past_the_deadline_fails_i1(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given a settled system and an order placed long ago that never settled
    settled_system(stub_system, 1)
    stuck = place()
    Order.update(created_at=ago(settings.saga_timeout + 60)).where(Order.id == stuck).execute()
    # And a pending order that is still young
    place()
    # When the audit runs
    report = run_audit(settings)
    # Then only I1 fails, naming the old order
    assert_only_fails(report, "I1", stuck)


def test_the_deadline_can_be_given_explicitly(settings: Settings, stub_system: StubSystem) -> None:
    pending = place()
    Order.update(created_at=ago(30)).where(Order.id == pending).execute()
    assert run_audit(settings, deadline_seconds=60).ok
    assert_only_fails(run_audit(settings, deadline_seconds=10), "I1", pending)


def test_a_confirmed_order_without_an_invoice_fails_i2(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given an order marked confirmed although no invoice was issued for it
    settled_system(stub_system, 1)
    lonely = place()
    Order.update(status="confirmed", settled_at=ago(5)).where(Order.id == lonely).execute()
    # When the audit runs, then only I2 fails, naming that order
    assert_only_fails(run_audit(settings), "I2", lonely)


def test_an_invoice_for_an_order_that_does_not_exist_fails_i2(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given a correctly numbered invoice whose order the orders database does not know
    (order_id,) = settled_system(stub_system, 1)
    template = invoice_of(order_id)
    ghost = str(uuid.uuid4())
    Invoice.create(
        id=uuid.uuid4(),
        sequence=2,
        number="INV-000002",
        order_id=ghost,
        customer_id="c1",
        total_minor=100,
        currency="EUR",
        status="issued",
        issued_at=template.issued_at,
    )
    InvoiceCounter.update(last_value=2).execute()
    # When the audit runs, then only I2 fails, naming the unknown order
    assert_only_fails(run_audit(settings), "I2", ghost)


def test_an_order_with_two_invoices_fails_i2(
    settings: Settings, databases: dict, stub_system: StubSystem
) -> None:
    # Given a database without the unique index (as a broken migration would leave it)
    database = databases["invoices"]
    (index,) = database.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'invoices' "
        "AND sql LIKE '%UNIQUE%order_id%'"
    ).fetchone()
    database.execute_sql(f'DROP INDEX "{index}"')
    (order_id,) = settled_system(stub_system, 1)
    first = invoice_of(order_id)
    Invoice.create(
        id=uuid.uuid4(),
        sequence=2,
        number="INV-000002",
        order_id=order_id,
        customer_id=first.customer_id,
        total_minor=first.total_minor,
        currency=first.currency,
        status="issued",
        issued_at=first.issued_at,
    )
    InvoiceCounter.update(last_value=2).execute()
    # When the audit runs, then only I2 fails, naming the order invoiced twice
    assert_only_fails(run_audit(settings), "I2", order_id)


def test_a_cancelled_order_with_an_issued_invoice_fails_i3(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given an order cancelled two minutes ago whose invoice was never voided
    order_id, _ = settled_system(stub_system, 2)
    Order.update(status="cancelled", cancel_reason="customer_cancelled", settled_at=ago(120)).where(
        Order.id == order_id
    ).execute()
    # When the audit runs, then only I3 fails, naming that order
    assert_only_fails(run_audit(settings), "I3", order_id)


def test_a_void_still_on_its_way_is_not_yet_an_i3_failure(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given an order cancelled a second ago: its void may still be in flight
    (order_id,) = settled_system(stub_system, 1)
    Order.update(status="cancelled", cancel_reason="customer_cancelled", settled_at=ago(1)).where(
        Order.id == order_id
    ).execute()
    # Then the audit waits for the outbox threshold before calling it a failure
    assert run_audit(settings, outbox_threshold_seconds=60).ok
    assert_only_fails(run_audit(settings, outbox_threshold_seconds=0), "I3", order_id)


@pytest.mark.parametrize(
    ("field", "value"), [("total_minor", 2469), ("currency", "USD")], ids=["total", "currency"]
)
def test_an_invoice_that_disagrees_with_its_order_fails_i4(
    settings: Settings, stub_system: StubSystem, field: str, value: object
) -> None:
    # Given an invoice whose total or currency differs from its order's
    _, order_id = settled_system(stub_system, 2)
    Invoice.update({field: value}).where(Invoice.order_id == order_id).execute()
    # When the audit runs, then only I4 fails, naming that order
    assert_only_fails(run_audit(settings), "I4", order_id)


def test_an_old_unpublished_outbox_event_fails_i5(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given an orders outbox event created two minutes ago and never published
    settled_system(stub_system, 1)
    row = OrdersOutbox.select().order_by(OrdersOutbox.seq).first()
    OrdersOutbox.update(published_at=None, created_at=ago(120)).where(
        OrdersOutbox.seq == row.seq
    ).execute()
    # When the audit runs, then only I5 fails, naming that event
    assert_only_fails(run_audit(settings), "I5", f"orders:{row.event_id}")
    # And a larger threshold tolerates it
    assert run_audit(settings, outbox_threshold_seconds=600).ok


def test_a_dead_letter_queue_holding_unrecorded_messages_fails_i6(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given one recorded invoices dead letter
    settled_system(stub_system, 1)
    dead_letters.record(
        InvoiceDeadLetter,
        message_id="m-1",
        queue_name="invoices",
        actor_name="issue_invoice",
        dedupe_key=None,
        order_id=None,
        message="{}",
        error="boom",
        attempts=3,
    )
    # Then a queue holding that one message is consistent
    assert run_audit(settings, broker_depth={"orders.XQ": 0, "invoices.XQ": 1}).ok
    # But a queue holding two messages has one nobody recorded: only I6 fails
    report = run_audit(settings, broker_depth={"orders.XQ": 0, "invoices.XQ": 2})
    assert_only_fails(report, "I6", "invoices.XQ (2 queued > 1 recorded)")


def test_without_a_broker_i6_is_reported_as_not_checked(
    settings: Settings, stub_system: StubSystem
) -> None:
    settled_system(stub_system, 1)
    result = run_audit(settings, broker_depth=None).result("I6")
    assert result.ok
    assert "not checked" in result.detail


def test_a_deleted_invoice_leaving_a_gap_fails_i7(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given three invoices, the second deleted along with its order
    _, middle, _ = settled_system(stub_system, 3)
    Invoice.delete().where(Invoice.order_id == middle).execute()
    Order.delete().where(Order.id == middle).execute()
    # When the audit runs, then only I7 fails, naming the missing number
    assert_only_fails(run_audit(settings), "I7", "missing INV-000002")


def test_a_deleted_last_invoice_is_a_gap_against_the_counter(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given the newest invoice deleted along with its order, the counter still at 2
    _, last = settled_system(stub_system, 2)
    Invoice.delete().where(Invoice.order_id == last).execute()
    Order.delete().where(Order.id == last).execute()
    # Then the gap at the end is found too
    assert_only_fails(run_audit(settings), "I7", "missing INV-000002")


def test_an_invoice_number_not_matching_its_sequence_fails_i7(
    settings: Settings, stub_system: StubSystem
) -> None:
    (order_id,) = settled_system(stub_system, 1)
    Invoice.update(number="INV-1").where(Invoice.order_id == order_id).execute()
    assert_only_fails(run_audit(settings), "I7", "INV-1 has sequence 1")


def test_offenders_are_capped_but_all_are_counted(
    settings: Settings, stub_system: StubSystem
) -> None:
    # Given 25 orders stuck in pending for an hour
    for _ in range(25):
        place()
    Order.update(created_at=ago(3600)).execute()
    OrdersOutbox.update(published_at=utcnow()).execute()  # the relay is not the subject here
    # Then I1 counts all 25 and lists the first 20
    result = run_audit(settings).result("I1")
    assert (result.ok, result.count, len(result.offenders)) == (False, 25, audit.MAX_OFFENDERS)


def test_the_command_exits_1_and_prints_json_when_an_invariant_fails(
    settings: Settings, stub_system: StubSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a consistent system, the command exits 0 with a table
    (order_id,) = settled_system(stub_system, 1)
    args = argparse.Namespace(json=False, outbox_threshold=60.0, deadline=None)
    assert audit.main(settings, args) == 0
    assert "all invariants hold" in capsys.readouterr().out
    # And with a mismatched total it exits 1 and says which invariant in JSON
    Invoice.update(total_minor=1).where(Invoice.order_id == order_id).execute()
    args = argparse.Namespace(json=True, outbox_threshold=60.0, deadline=None)
    assert audit.main(settings, args) == 1
    data = json.loads(capsys.readouterr().out)
    failed = [item for item in data["invariants"] if not item["ok"]]
    assert [(item["code"], item["offenders"]) for item in failed] == [("I4", [order_id])]
