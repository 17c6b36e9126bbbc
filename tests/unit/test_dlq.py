"""Dead-letter tooling: ``orderflow dlq list``, ``replay`` and ``recover`` on SQLite."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid

import dramatiq
import falcon.testing
import pytest

from actors import catalogue, invoicing
from actors.poison import undecodable_fields
from invoices.models import DeadLetter as InvoiceDeadLetter
from invoices.models import Invoice
from ops import bootstrap, cli
from ops.dlq import commands, listing, records, recover, replay
from ops.settings import Settings
from ops.shared.persistence.dead_letters import DeadLetterRecord
from ops.shared.values.clock import utcnow
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.models import DeadLetter as OrderDeadLetter
from orders.models import Order
from orders.models import OutboxEvent as OrdersOutbox

from .conftest import StubSystem

SERVICES = ["orders", "invoices"]
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "invoices/service.py", line 91, in issue_invoice\n'
    "    account = _locked_account(customer_id)\n"
    "psycopg2.errors.LockNotAvailable: canceling statement due to lock timeout\n\n"
)


def ago(seconds: float) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=seconds)


def a_message(actor: str = "issue_invoice", queue: str = "invoices") -> dramatiq.Message:
    """A message as Dramatiq dead-letters it: with the options Retries and the delay wrote."""
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=(),
        kwargs={"order_id": "o-1", "customer_id": "c1", "dedupe_key": "dk-1"},
        options={
            "event_type": "OrderPlaced",
            "order_id": "o-1",
            "trace_context": {
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            },
            "retries": 2,
            "traceback": TRACEBACK,
            "requeue_timestamp": 1_700_000_000_000,
            "eta": 1_700_000_000_500,
        },
    )


def letter(
    model: type[DeadLetterRecord],
    *,
    seconds_ago: float = 10,
    message: dramatiq.Message | None = None,
    replayed_by: str | None = None,
) -> DeadLetterRecord:
    """Store a dead letter of ``message`` (a fresh one by default) failed ``seconds_ago``."""
    message = message or a_message(queue="orders" if model is OrderDeadLetter else "invoices")
    return model.create(
        message_id=message.message_id,
        queue_name=message.queue_name,
        actor_name=message.actor_name,
        dedupe_key=message.kwargs.get("dedupe_key"),
        order_id=message.kwargs.get("order_id"),
        message=json.dumps(message.asdict()),
        error=TRACEBACK,
        attempts=3,
        failed_at=ago(seconds_ago),
        replayed_at=ago(1) if replayed_by else None,
        replayed_by=replayed_by,
    )


def undecodable_letter() -> DeadLetterRecord:
    fields = undecodable_fields("invoices", b"\xff\x00 not json", "the body is not a message")
    return InvoiceDeadLetter.create(**fields, failed_at=ago(5))


def is_replayed(record: DeadLetterRecord) -> bool:
    return type(record).get_by_id(record.id).replayed_at is not None


class Enqueued(list):
    """An ``enqueue`` that keeps what it was given."""

    def __call__(self, message: dramatiq.Message) -> dramatiq.Message:
        self.append(message)
        return message


def settle(stub_system: StubSystem) -> None:
    """Process what was enqueued, then relay and process everything that follows."""
    stub_system.broker.join("invoices", fail_fast=False, timeout=10_000)
    stub_system.worker.join()
    stub_system.drain()


def run(settings: Settings, *argv: str) -> int:
    args = cli._parser().parse_args(["dlq", *argv])
    return args.run(settings, args)


# -- list -------------------------------------------------------------------------------


@pytest.mark.usefixtures("databases")
def test_the_list_shows_both_services_unreplayed_dead_letters_newest_first() -> None:
    # Given dead letters in both services, one of them already replayed
    old = letter(InvoiceDeadLetter, seconds_ago=3600)
    new = letter(OrderDeadLetter, seconds_ago=60)
    middle = letter(InvoiceDeadLetter, seconds_ago=600)
    letter(OrderDeadLetter, seconds_ago=30, replayed_by="alice")
    # When they are listed, then the unreplayed ones come newest first
    entries = records.newest_first(SERVICES)
    assert [(e.service, e.record.message_id) for e in entries] == [
        ("orders", new.message_id),
        ("invoices", middle.message_id),
        ("invoices", old.message_id),
    ]


@pytest.mark.usefixtures("databases")
def test_the_list_includes_replayed_ones_with_all_and_keeps_to_one_service() -> None:
    replayed = letter(OrderDeadLetter, seconds_ago=30, replayed_by="alice")
    waiting = letter(OrderDeadLetter, seconds_ago=60)
    invoices_one = letter(InvoiceDeadLetter, seconds_ago=90)
    everything = records.newest_first(SERVICES, include_replayed=True)
    assert [e.record.message_id for e in everything] == [
        replayed.message_id,
        waiting.message_id,
        invoices_one.message_id,
    ]
    only_invoices = records.newest_first(["invoices"], include_replayed=True)
    assert [e.record.message_id for e in only_invoices] == [invoices_one.message_id]
    assert records.count(SERVICES) == 2
    assert records.count(SERVICES, include_replayed=True) == 3


@pytest.mark.usefixtures("databases")
def test_the_limit_keeps_the_newest_across_both_services() -> None:
    ids = [
        letter(model, seconds_ago=s).message_id
        for model, s in [
            (OrderDeadLetter, 40),
            (InvoiceDeadLetter, 10),
            (OrderDeadLetter, 20),
            (InvoiceDeadLetter, 30),
        ]
    ]
    newest = records.newest_first(SERVICES, limit=2)
    assert [e.record.message_id for e in newest] == [ids[1], ids[2]]


def test_an_age_is_shown_in_its_largest_whole_unit() -> None:
    seconds = (0, 42, 60, 200, 3599, 5 * 3600 + 59, 2 * 86400 + 7)
    ages = ["0s", "42s", "1m", "3m", "59m", "5h", "2d"]
    assert [listing.age(s) for s in seconds] == ages


def test_the_error_column_is_the_last_line_of_the_traceback_shortened() -> None:
    summary = listing.error_summary(TRACEBACK)
    assert summary.startswith("psycopg2.errors.LockNotAvailable: canceling")
    assert len(summary) == listing.ERROR_WIDTH and summary.endswith("…")
    assert listing.error_summary("KeyError('x')\n\n") == "KeyError('x')"
    assert listing.error_summary("") == ""


@pytest.mark.usefixtures("databases")
def test_the_table_has_a_row_per_dead_letter_with_age_and_replay(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = letter(InvoiceDeadLetter, seconds_ago=3 * 3600 + 5)
    replayed = letter(OrderDeadLetter, seconds_ago=120, replayed_by="alice")
    assert run(settings, "list", "--all") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", header) == list(listing.COLUMNS)
    # the replayed one failed last, so it comes first
    newest = re.split(r"\s{2,}", rows[0])
    assert newest[:5] == [replayed.message_id, "orders", "issue_invoice", "dk-1", "o-1"]
    assert newest[5].startswith("psycopg2.errors.LockNotAvailable")
    assert newest[6:8] == ["3", "2m"] and re.fullmatch(r"\ds ago by alice", newest[8])
    oldest = re.split(r"\s{2,}", rows[1])
    assert oldest[0] == waiting.message_id and oldest[6:] == ["3", "3h"]  # not replayed: blank


@pytest.mark.usefixtures("databases")
def test_the_json_list_has_every_field_with_iso_times_and_age_in_seconds(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    record = letter(InvoiceDeadLetter, seconds_ago=42, replayed_by="alice")
    assert run(settings, "list", "--all", "--json") == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["message_id"] == record.message_id
    assert (item["service"], item["queue_name"], item["actor_name"]) == (
        "invoices",
        "invoices",
        "issue_invoice",
    )
    assert (item["dedupe_key"], item["order_id"], item["attempts"]) == ("dk-1", "o-1", 3)
    assert item["error"] == TRACEBACK and item["error_summary"].startswith("psycopg2.errors")
    assert 42 <= item["age_seconds"] <= 44
    assert item["failed_at"].endswith("Z") and dt.datetime.fromisoformat(item["failed_at"])
    assert item["replayed_at"].endswith("Z") and item["replayed_by"] == "alice"
    assert item["message"]["kwargs"]["dedupe_key"] == "dk-1"


@pytest.mark.usefixtures("databases")
def test_an_empty_list_says_so(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    letter(OrderDeadLetter, replayed_by="alice")  # replayed: not listed by default
    assert run(settings, "list") == 0
    assert capsys.readouterr().out.strip() == "no dead letters"
    assert run(settings, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.usefixtures("databases")
def test_a_limited_table_says_how_many_more_there_are(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    for seconds in (10, 20, 30):
        letter(InvoiceDeadLetter, seconds_ago=seconds)
    assert run(settings, "list", "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1] == "(the newest 2 of 3; --limit N shows more)"


# -- replay -----------------------------------------------------------------------------


@pytest.mark.usefixtures("databases")
def test_a_replay_is_a_new_message_on_the_original_queue_without_retry_bookkeeping() -> None:
    # Given a dead letter of a message that went through retries
    original = a_message()
    record = letter(InvoiceDeadLetter, message=original)
    # When it is replayed
    enqueued = Enqueued()
    (outcome,) = replay.replay([record.message_id], enqueue=enqueued, by="alice", services=SERVICES)
    # Then one message went out: the same step and arguments, dedupe key included
    (sent,) = enqueued
    assert outcome == replay.Replayed(
        record.message_id, sent.message_id, "issue_invoice", "invoices"
    )
    assert (sent.queue_name, sent.actor_name, sent.kwargs) == (
        "invoices",
        "issue_invoice",
        original.kwargs,
    )
    assert sent.kwargs["dedupe_key"] == "dk-1"
    # And it is a new message that names the one it replays, without retries' state
    assert sent.message_id != original.message_id and uuid.UUID(sent.message_id).version == 4
    assert sent.options == {
        "event_type": "OrderPlaced",
        "order_id": "o-1",
        "trace_context": original.options["trace_context"],
        "replay_of": original.message_id,
    }
    assert sent.message_timestamp > original.message_timestamp
    # And the record says when and by whom
    stored = InvoiceDeadLetter.get_by_id(record.id)
    assert stored.replayed_by == "alice"
    assert abs((utcnow() - stored.replayed_at).total_seconds()) < 5


@pytest.mark.usefixtures("databases")
def test_a_record_is_marked_replayed_only_after_the_enqueue_succeeded() -> None:
    record = letter(OrderDeadLetter)

    def broker_down(message: dramatiq.Message) -> None:
        raise ConnectionError("broker unreachable")

    (outcome,) = replay.replay([record.message_id], enqueue=broker_down, by="a", services=SERVICES)
    assert isinstance(outcome, replay.NotReplayed)
    assert "could not enqueue" in outcome.reason and "broker unreachable" in outcome.reason
    assert not is_replayed(record)
    # And once the broker is back the same record replays
    enqueued = Enqueued()
    (outcome,) = replay.replay([record.message_id], enqueue=enqueued, by="a", services=SERVICES)
    assert isinstance(outcome, replay.Replayed) and len(enqueued) == 1 and is_replayed(record)


@pytest.mark.usefixtures("databases")
def test_replay_refuses_unknown_already_replayed_and_undecodable_records() -> None:
    replayed = letter(InvoiceDeadLetter, replayed_by="alice")
    garbage = undecodable_letter()
    enqueued = Enqueued()
    outcomes = list(
        replay.replay(
            ["no-such-id", replayed.message_id, garbage.message_id],
            enqueue=enqueued,
            by="bob",
            services=SERVICES,
        )
    )
    assert all(isinstance(outcome, replay.NotReplayed) for outcome in outcomes)
    reasons = [outcome.reason for outcome in outcomes]
    assert reasons[0].startswith("unknown")
    assert reasons[1].startswith("already replayed") and "by alice" in reasons[1]
    assert "--again" in reasons[1]
    assert reasons[2].startswith("undecodable")
    assert enqueued == [] and not is_replayed(garbage)
    assert InvoiceDeadLetter.get_by_id(replayed.id).replayed_by == "alice"


@pytest.mark.usefixtures("databases")
def test_again_replays_a_record_once_more_and_records_the_new_replay() -> None:
    record = letter(InvoiceDeadLetter, replayed_by="alice")
    enqueued = Enqueued()
    outcomes = list(
        replay.replay(
            [record.message_id], enqueue=enqueued, by="bob", again=True, services=SERVICES
        )
    )
    assert isinstance(outcomes[0], replay.Replayed) and len(enqueued) == 1
    assert InvoiceDeadLetter.get_by_id(record.id).replayed_by == "bob"


@pytest.mark.usefixtures("databases")
def test_a_stored_message_that_is_not_a_dramatiq_message_is_refused() -> None:
    record = letter(OrderDeadLetter)
    OrderDeadLetter.update(message='{"not": "a message"}').where(
        OrderDeadLetter.id == record.id
    ).execute()
    (outcome,) = replay.replay([record.message_id], enqueue=Enqueued(), by="a", services=SERVICES)
    assert isinstance(outcome, replay.NotReplayed) and outcome.reason.startswith("undecodable")


@pytest.mark.usefixtures("databases")
def test_a_message_for_an_unknown_actor_is_replayed_as_it_is() -> None:
    record = letter(OrderDeadLetter, message=a_message(actor="retired_actor", queue="orders"))
    enqueued = Enqueued()
    (outcome,) = replay.replay([record.message_id], enqueue=enqueued, by="a", services=SERVICES)
    assert isinstance(outcome, replay.Replayed)
    assert (enqueued[0].actor_name, enqueued[0].queue_name) == ("retired_actor", "orders")


@pytest.mark.usefixtures("databases")
def test_an_id_of_the_other_service_is_unknown_with_service() -> None:
    record = letter(OrderDeadLetter)
    (outcome,) = replay.replay(
        [record.message_id], enqueue=Enqueued(), by="a", services=["invoices"]
    )
    assert isinstance(outcome, replay.NotReplayed) and "in invoices" in outcome.reason


@pytest.mark.usefixtures("databases")
def test_the_backlog_is_every_unreplayed_record_oldest_first_without_undecodable_ones() -> None:
    newer = letter(OrderDeadLetter, seconds_ago=10)
    older = letter(InvoiceDeadLetter, seconds_ago=100)
    letter(InvoiceDeadLetter, seconds_ago=50, replayed_by="alice")
    garbage = undecodable_letter()
    ids, undecodable = replay.backlog(SERVICES)
    assert ids == [older.message_id, newer.message_id]
    assert [entry.record.message_id for entry in undecodable] == [garbage.message_id]


def test_a_replayed_issue_invoice_issues_one_invoice_however_often_it_is_replayed(
    stub_system: StubSystem,
) -> None:
    # Given a pending order whose issue_invoice message was dead-lettered
    order = orders.place_order(NewOrder("c1", "EUR", (Line("SKU-1", 2, 1234),)))
    event = OrdersOutbox.get()
    OrdersOutbox.update(published_at=utcnow()).execute()  # the message never went out
    (message,) = catalogue.messages_for(
        "OrderPlaced", str(event.event_id), json.loads(event.payload)
    )
    record = letter(InvoiceDeadLetter, message=message)
    # When an operator replays it through the broker
    (outcome,) = replay.replay(
        [record.message_id], enqueue=stub_system.broker.enqueue, by="a", services=SERVICES
    )
    settle(stub_system)
    # Then the saga finishes: one invoice, the order confirmed
    assert isinstance(outcome, replay.Replayed)
    assert Order.get_by_id(order.id).status == "confirmed"
    assert Invoice.select().where(Invoice.order_id == str(order.id)).count() == 1
    # And replaying it again changes nothing (the dedupe key is the same)
    (outcome,) = replay.replay(
        [record.message_id],
        enqueue=stub_system.broker.enqueue,
        by="a",
        again=True,
        services=SERVICES,
    )
    settle(stub_system)
    assert isinstance(outcome, replay.Replayed)
    assert Invoice.select().where(Invoice.order_id == str(order.id)).count() == 1


# -- the command ------------------------------------------------------------------------


@pytest.fixture
def distributed(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    """A fake RabbitMQ publisher behind the command; it keeps what the command sent."""
    enqueued = Enqueued()
    monkeypatch.setattr(
        commands, "rabbitmq_publisher", lambda url, queue_type: (enqueued, lambda: None)
    )
    return enqueued


def with_broker(settings: Settings, **changes: object) -> Settings:
    """Distributed settings on the same SQLite files (a broker URL needs both database URLs)."""
    return dataclasses.replace(
        settings,
        broker_url="amqp://guest:guest@127.0.0.1:5672/%2F",
        orders_database_url=settings.database_url("orders"),
        invoices_database_url=settings.database_url("invoices"),
        **changes,
    )


@pytest.mark.usefixtures("databases")
def test_the_command_exits_0_when_every_id_was_replayed_and_1_otherwise(
    settings: Settings, distributed: Enqueued, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = letter(OrderDeadLetter), letter(InvoiceDeadLetter)
    settings = with_broker(settings, operator_name="carol")
    assert run(settings, "replay", first.message_id, second.message_id) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in out] == [
        [first.message_id, "->", distributed[0].message_id],
        [second.message_id, "->", distributed[1].message_id],
    ]
    assert out[1].endswith("issue_invoice on invoices")
    assert InvoiceDeadLetter.get_by_id(second.id).replayed_by == "carol"  # the settings' operator
    # A second replay without --again is refused: exit 1, the reason on stderr
    assert run(settings, "replay", first.message_id, "--by", "dave") == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "already replayed" in captured.err
    # With --again it goes, recorded with --by
    assert run(settings, "replay", first.message_id, "--again", "--by", "dave") == 0
    assert OrderDeadLetter.get_by_id(first.id).replayed_by == "dave"


@pytest.mark.usefixtures("databases")
def test_the_command_replays_the_backlog_with_all_and_reports_undecodable_ones(
    settings: Settings, distributed: Enqueued, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = letter(InvoiceDeadLetter)
    garbage = undecodable_letter()
    assert run(with_broker(settings), "replay", "--all", "--service", "invoices") == 0
    captured = capsys.readouterr()
    assert [m.options["replay_of"] for m in distributed] == [waiting.message_id]
    assert f"{garbage.message_id}: skipped: undecodable" in captured.err
    assert run(with_broker(settings), "replay", "--all") == 0
    assert "no dead letters to replay" in capsys.readouterr().out


@pytest.mark.usefixtures("databases")
def test_the_command_refuses_to_run_without_a_broker_or_with_bad_arguments(
    settings: Settings, distributed: Enqueued, capsys: pytest.CaptureFixture[str]
) -> None:
    record = letter(OrderDeadLetter)
    assert run(settings, "replay", record.message_id) == 2
    assert "BROKER_URL is not set" in capsys.readouterr().err
    assert run(with_broker(settings), "replay") == 2
    assert run(with_broker(settings), "replay", record.message_id, "--all") == 2
    assert run(with_broker(settings), "replay", "--all", "--again") == 2
    assert run(with_broker(settings), "replay", record.message_id, "--by", "x" * 129) == 2
    assert distributed == [] and not is_replayed(record)


def test_the_operator_comes_from_orderflow_operator_or_the_login() -> None:
    assert Settings.from_env({"ORDERFLOW_OPERATOR": "alice"}).operator_name == "alice"
    assert Settings.from_env({}).operator_name  # the login name, or "unknown"


# -- recover ----------------------------------------------------------------------------


def dead_message(actor: str = "issue_invoice", **kwargs: object) -> dramatiq.Message:
    """A message as it sits in the ``.XQ``: its body as last delivered (one retry before)."""
    return dramatiq.Message(
        queue_name="invoices",
        actor_name=actor,
        args=(),
        kwargs={"order_id": "o-1", "customer_id": "c1", "dedupe_key": "dk-1", **kwargs},
        options={"retries": 1},
    )


@pytest.mark.usefixtures("databases")
def test_recover_records_each_xq_message_without_a_record_and_nothing_twice() -> None:
    # Given an .XQ holding a recorded message, an unrecorded one of an actor nobody
    # declared, a recorded undecodable body twice (one copy recorded) and a new one
    recorded = a_message()
    letter(InvoiceDeadLetter, message=recorded)
    unknown = dead_message("no_such_actor")
    garbage = b"\xff\x00 not json"
    InvoiceDeadLetter.create(**undecodable_fields("invoices", garbage, "boom"), failed_at=ago(5))
    bodies = [recorded.encode(), unknown.encode(), garbage, garbage, b"{}"]
    # When recover runs over it with the invoices worker's handlers
    report = recover.recover("invoices", bodies, invoicing)
    # Then the three without a record get one, the recorded two are left alone
    assert (report.messages, report.already_recorded, report.complete) == (5, 2, True)
    assert [(o.message_id, o.actor_name) for o in report.outcomes] == [
        (unknown.message_id, "no_such_actor"),
        ("(undecodable)", "<undecodable>"),
        ("(undecodable)", "<undecodable>"),
    ]
    stored = InvoiceDeadLetter.get(InvoiceDeadLetter.message_id == unknown.message_id)
    assert (stored.queue_name, stored.dedupe_key, stored.attempts) == ("invoices", "dk-1", 2)
    assert "orderflow dlq recover" in stored.error and "invoices.XQ" in stored.error
    assert InvoiceDeadLetter.select().count() == 5
    # And a second run finds every message recorded
    again = recover.recover("invoices", bodies, invoicing)
    assert (again.already_recorded, again.outcomes) == (5, [])
    assert InvoiceDeadLetter.select().count() == 5


def test_a_recovered_issue_invoice_ends_its_saga_as_the_worker_would_have(
    stub_system: StubSystem,
) -> None:
    # Given a pending order whose issue_invoice reached the .XQ without a record
    order = orders.place_order(NewOrder("c1", "EUR", (Line("SKU-1", 2, 1234),)))
    event = OrdersOutbox.get()
    OrdersOutbox.update(published_at=utcnow()).execute()  # it went out, and failed for good
    (message,) = catalogue.messages_for(
        "OrderPlaced", str(event.event_id), json.loads(event.payload)
    )
    # When recover records it
    report = recover.recover("invoices", [message.encode()], invoicing)
    stub_system.drain()
    # Then InvoiceFailed cancels the order, as the worker's handler does
    assert report.complete and len(report.outcomes) == 1
    cancelled = Order.get_by_id(order.id)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "invoice_failed")
    assert Invoice.select().count() == 0


@pytest.mark.usefixtures("databases")
def test_recover_reports_a_message_it_could_not_record_and_goes_on() -> None:
    class Failing:
        DEAD_LETTER_HANDLERS: dict = {}

        @staticmethod
        def record_dead_letter(message: dramatiq.Message, error: str, attempts: int) -> None:
            if message.actor_name == "first":
                raise ConnectionError("database is down")
            invoicing.record_dead_letter(message, error, attempts)

        record_undecodable = staticmethod(invoicing.record_undecodable)

    first, second = dead_message("first"), dead_message("second")
    report = recover.recover("invoices", [first.encode(), second.encode()], Failing)
    assert not report.complete
    assert [type(o).__name__ for o in report.outcomes] == ["NotRecovered", "Recovered"]
    assert "database is down" in report.lines()[1]
    assert report.lines()[0] == (
        "invoices.XQ: 2 message(s): 0 recorded already, 1 recorded now, 1 NOT recorded"
    )


@pytest.mark.usefixtures("databases")
def test_the_recover_command_exits_0_when_all_are_recorded_1_otherwise_2_without_a_broker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    xq = {"orders.XQ": [], "invoices.XQ": [dead_message("second").encode()]}
    monkeypatch.setattr(recover, "peek", lambda url, queue: xq[queue])
    assert run(with_broker(settings), "recover") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "orders.XQ: empty"
    assert out[1] == "invoices.XQ: 1 message(s): 0 recorded already, 1 recorded now"
    assert run(with_broker(settings), "recover", "--service", "invoices") == 0
    assert capsys.readouterr().out.startswith("invoices.XQ: 1 message(s): 1 recorded already")
    monkeypatch.setattr(
        invoicing.service, "record_dead_letter", lambda **_: (_ for _ in ()).throw(OSError("x"))
    )
    xq["invoices.XQ"].append(dead_message("third").encode())
    assert run(with_broker(settings), "recover") == 1
    assert run(settings, "recover") == 2
    assert "BROKER_URL is not set" in capsys.readouterr().err


# -- over HTTP (ops.dlq.http, on each service's front) -----------------------------------


def dlq_client(settings: Settings, publisher: object) -> falcon.testing.TestClient:
    from ops.dlq import http as dlq_http
    from orders import api as orders_api

    app = orders_api.create_app(
        idempotency_ttl=60,
        max_body_bytes=65536,
        ready_checks={},
        token_keys=bootstrap.token_keys(settings),
    )
    dlq_http.add_routes(app, "orders", publisher)
    return falcon.testing.TestClient(app)


def test_an_operator_lists_and_replays_a_dead_letter_over_http_once(
    settings: Settings, databases: dict, token
) -> None:
    record = letter(OrderDeadLetter)
    sent = Enqueued()
    client = dlq_client(settings, lambda: sent)
    operator = {"Authorization": f"Bearer {token('alice', 'operator')}"}
    listed = client.simulate_get("/dead-letters", headers=operator)
    assert listed.status_code == 200, listed.text
    assert [item["message_id"] for item in listed.json["items"]] == [record.message_id]
    path = f"/dead-letters/{record.message_id}/replay"
    first = client.simulate_post(path, headers=operator)
    assert first.status_code == 200, first.text
    assert (first.json["replayed_by"], first.json["new_message_id"]) == (
        "alice",
        sent[0].message_id,
    )
    again = client.simulate_post(path, headers=operator)
    assert again.status_code == 409
    assert (
        again.json["detail"].startswith("already replayed") and "by alice" in again.json["detail"]
    )
    assert "--again" not in again.json["detail"]
    assert len(sent) == 1
    assert client.simulate_get("/dead-letters", headers=operator).json["items"] == []
    everything = client.simulate_get("/dead-letters", query_string="all=true", headers=operator)
    assert everything.json["items"][0]["replayed_by"] == "alice"


def test_dead_letters_over_http_are_for_operators_and_replay_needs_rabbitmq(
    settings: Settings, databases: dict, token
) -> None:
    record = letter(OrderDeadLetter)
    client = dlq_client(settings, None)
    customer = {"Authorization": f"Bearer {token('c1')}"}
    operator = {"Authorization": f"Bearer {token('alice', 'operator')}"}
    assert client.simulate_get("/dead-letters", headers=customer).status_code == 403
    path = f"/dead-letters/{record.message_id}/replay"
    assert client.simulate_post(path, headers=customer).status_code == 403
    assert client.simulate_post(path, headers=operator).status_code == 409
    unknown = client.simulate_post("/dead-letters/nope/replay", headers=operator)
    assert unknown.status_code == 404
    assert not is_replayed(record)
