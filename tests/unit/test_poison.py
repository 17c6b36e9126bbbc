"""Messages no step can finish: crash loops, unknown actors, undecodable bodies."""

from __future__ import annotations

import base64
import json
import logging
import types
import uuid

import dramatiq
import pytest
from dramatiq.broker import MessageProxy

from actors import invoicing
from actors.poison import CrashLoop, RecordingConsumer, RedeliveryGuard, undecodable_fields
from invoices.models import DeadLetter as InvoiceDeadLetter
from invoices.models import Redelivery as InvoiceRedelivery
from ops.shared.persistence import redeliveries

from .conftest import StubSystem


def redelivered(message: dramatiq.Message) -> MessageProxy:
    proxy = MessageProxy(message)
    proxy.redelivered = True
    return proxy


def a_message(actor: str = "issue_invoice") -> dramatiq.Message:
    return dramatiq.Message(
        queue_name="invoices",
        actor_name=actor,
        args=(),
        kwargs={"order_id": str(uuid.uuid4()), "dedupe_key": str(uuid.uuid4())},
        options={},
    )


def test_redeliveries_are_counted_durably_per_message(databases: dict) -> None:
    first, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert [redeliveries.count(InvoiceRedelivery, first) for _ in range(3)] == [1, 2, 3]
    assert redeliveries.count(InvoiceRedelivery, other) == 1
    assert InvoiceRedelivery.get_by_id(first).redeliveries == 3


def test_a_first_delivery_is_not_counted(databases: dict) -> None:
    calls: list[str] = []
    guard = RedeliveryGuard({"invoices": lambda mid: calls.append(mid) or 1}, limit=3)
    guard.before_process_message(None, MessageProxy(a_message()))  # type: ignore[arg-type]
    assert calls == []


def test_a_message_redelivered_past_the_limit_is_failed_as_a_crash_loop(databases: dict) -> None:
    guard = RedeliveryGuard(
        {"invoices": lambda mid: redeliveries.count(InvoiceRedelivery, mid)}, limit=2
    )
    message = a_message()
    for _ in range(2):  # within the limit: the step runs
        proxy = redelivered(message)
        guard.before_process_message(None, proxy)  # type: ignore[arg-type]
        assert not proxy.failed
    proxy = redelivered(message)
    with pytest.raises(CrashLoop) as raised:
        guard.before_process_message(None, proxy)  # type: ignore[arg-type]
    assert proxy.failed
    assert raised.value.redeliveries == 3


def test_a_crash_loop_issue_invoice_is_recorded_and_ends_the_saga(
    stub_system: StubSystem,
) -> None:
    # Given an issue_invoice message that its worker already failed on three times
    message = a_message()
    order_id = message.kwargs["order_id"]
    message = message.copy(
        kwargs={**message.kwargs, "customer_id": "c-1", "total": "1.00", "currency": "EUR"}
    )
    for _ in range(3):
        redeliveries.count(InvoiceRedelivery, message.message_id)
    guard = next(m for m in stub_system.broker.middleware if isinstance(m, RedeliveryGuard))
    proxy = redelivered(message)
    # When it comes back once more
    with pytest.raises(CrashLoop) as raised:
        guard.before_process_message(stub_system.broker, proxy)
    proxy.stuff_exception(raised.value)
    stub_system.broker.emit_before("nack", proxy)
    # Then it is recorded with its redeliveries, and the failure handler ran
    letter = InvoiceDeadLetter.get(InvoiceDeadLetter.message_id == message.message_id)
    assert (letter.actor_name, letter.order_id, letter.attempts) == (
        "issue_invoice",
        order_id,
        4,
    )
    assert "worker process died" in letter.error


def test_a_message_for_an_unknown_actor_is_dead_lettered_and_recorded(
    stub_system: StubSystem,
) -> None:
    message = a_message("no_such_actor")
    stub_system.broker.enqueue(message)
    stub_system.broker.join("invoices", fail_fast=False, timeout=10_000)
    stub_system.worker.join()
    letter = InvoiceDeadLetter.get(InvoiceDeadLetter.message_id == message.message_id)
    assert (letter.actor_name, letter.attempts) == ("no_such_actor", 1)
    assert "ActorNotFound" in letter.error
    assert len(stub_system.broker.dead_letters) == 1


def test_an_undecodable_body_is_recorded_with_its_raw_bytes(databases: dict) -> None:
    # A consumer whose deliveries are one bad body, one good message, one idle tick
    consumer = RecordingConsumer.__new__(RecordingConsumer)
    consumer.queue_name = "invoices"
    consumer.handler = invoicing.record_undecodable
    consumer.known_tags = set()
    consumer.logger = logging.getLogger("test")
    consumer._nack = lambda tag: None  # Dramatiq nacks the bad body into the .XQ
    good = json.dumps(a_message().asdict()).encode()
    deliveries = [
        (types.SimpleNamespace(delivery_tag=1, redelivered=False), None, b"\xff not json"),
        (types.SimpleNamespace(delivery_tag=2, redelivered=False), None, good),
        (None, None, None),
    ]
    consumer.iterator = consumer._kept_aside(iter(deliveries))
    # Dramatiq hands on the good message only, and the bad body alone is recorded
    received = [next(consumer) for _ in deliveries]
    assert [m is not None for m in received] == [False, True, False]
    (letter,) = InvoiceDeadLetter.select()
    assert letter.actor_name == "<undecodable>"
    assert base64.b64decode(json.loads(letter.message)["body_base64"]) == b"\xff not json"
    assert "not a Dramatiq message" in letter.error


def test_each_undecodable_copy_gets_a_record_of_its_own() -> None:
    first = undecodable_fields("orders", b"x", "bad")
    second = undecodable_fields("orders", b"x", "bad")
    assert first["message_id"] != second["message_id"]


def test_an_undecodable_body_redelivered_after_its_worker_died_is_recorded_once(
    databases: dict,
) -> None:
    # the first worker recorded the body and died before its nack reached RabbitMQ, so
    # the same body comes back flagged redelivered; a second copy that was never
    # delivered before still gets a record of its own
    consumer = RecordingConsumer.__new__(RecordingConsumer)
    consumer.queue_name = "invoices"
    consumer.handler = invoicing.record_undecodable
    consumer.known_tags = set()
    consumer.logger = logging.getLogger("test")
    consumer._nack = lambda tag: None
    deliveries = [
        (types.SimpleNamespace(delivery_tag=1, redelivered=False), None, b"\xff not json"),
        (types.SimpleNamespace(delivery_tag=2, redelivered=True), None, b"\xff not json"),
        (types.SimpleNamespace(delivery_tag=3, redelivered=False), None, b"\xff not json"),
        (types.SimpleNamespace(delivery_tag=4, redelivered=True), None, b"\xfe other"),
    ]
    consumer.iterator = consumer._kept_aside(iter(deliveries))
    for _ in deliveries:
        assert next(consumer) is None
    bodies = sorted(
        base64.b64decode(json.loads(letter.message)["body_base64"])
        for letter in InvoiceDeadLetter.select()
    )
    assert bodies == [b"\xfe other", b"\xff not json", b"\xff not json"]
