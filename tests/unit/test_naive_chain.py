"""The naive reference chain of the benchmark, on the stub broker and SQLite files."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import peewee
import pytest
from dramatiq.brokers.stub import StubBroker
from falcon import testing

from tests.bench.naive import NaiveConfig, load_config, schema
from tests.bench.naive.__main__ import child_commands, supervise
from tests.bench.naive.actors import confirm_order, issue_invoice
from tests.bench.naive.app import create_app

ORDER = {
    "customer_id": "c1",
    "currency": "EUR",
    "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
}


@dataclass
class NaiveChain:
    """The naive front as a test client, and its actors on a stub broker and worker."""

    client: testing.TestClient
    broker: StubBroker
    worker: dramatiq.Worker

    def drain(self) -> None:
        """Process every message of both queues, in saga order."""
        for queue in ("invoices", "orders"):
            self.broker.join(queue, fail_fast=True, timeout=10_000)
            self.worker.join()


@pytest.fixture
def naive(tmp_path: Path) -> Iterator[NaiveChain]:
    orders = peewee.SqliteDatabase(tmp_path / "orders.db")
    invoices = peewee.SqliteDatabase(tmp_path / "invoices.db")
    numbers = itertools.count(1)
    # SQLite has no sequences: this stands in for PostgreSQL's nextval().
    invoices.register_function(lambda name: next(numbers), "nextval", 1)
    schema.bind(orders, invoices)
    orders.create_tables([schema.Order])
    invoices.create_tables([schema.Invoice])
    broker = StubBroker()
    broker.emit_after("process_boot")
    for actor in (issue_invoice, confirm_order):  # importing the actors bound them to RabbitMQ
        actor.broker = broker
        broker.declare_actor(actor)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    yield NaiveChain(testing.TestClient(create_app()), broker, worker)
    worker.stop()
    broker.close()
    orders.close()
    invoices.close()


def test_a_placed_order_is_pending_then_confirmed_with_an_invoice_number(
    naive: NaiveChain,
) -> None:
    # Given an order placed over HTTP
    placed = naive.client.simulate_post("/orders", json=ORDER)
    assert placed.status_code == 201
    assert (placed.json["status"], placed.json["total"]) == ("pending", "10.00")
    # When the worker processes both steps
    naive.drain()
    # Then the order is confirmed, settled, and carries its invoice's number
    order = schema.Order.get_by_id(placed.json["id"])
    invoice = schema.Invoice.get(schema.Invoice.order_id == placed.json["id"])
    assert (order.status, order.invoice_number, order.invoice_id) == (
        "confirmed",
        "INV-000001",
        invoice.id,
    )
    assert order.settled_at >= order.created_at
    assert (invoice.total_minor, invoice.currency, invoice.status) == (1000, "EUR", "issued")


def test_prices_in_json_numbers_are_decimals_not_floats(naive: NaiveChain) -> None:
    # Given three lines whose prices would not add up exactly as floats
    body = {**ORDER, "lines": [{"sku": "SKU-1", "quantity": 3, "unit_price": 0.1}]}
    # When the order is placed
    placed = naive.client.simulate_post("/orders", json=body)
    # Then the total is exact
    assert (placed.status_code, placed.json["total"]) == (201, "0.30")
    assert schema.Order.get_by_id(placed.json["id"]).total_minor == 30


def test_bad_json_is_answered_with_400_and_stores_nothing(naive: NaiveChain) -> None:
    # When the body is not JSON
    answer = naive.client.simulate_post(
        "/orders", body="{not json", headers={"Content-Type": "application/json"}
    )
    # Then the request is refused and no order exists
    assert answer.status_code == 400
    assert schema.Order.select().count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "c1", "lines": ORDER["lines"]},
        {**ORDER, "lines": []},
        {**ORDER, "lines": [{"sku": "SKU-1", "quantity": 0, "unit_price": "1.00"}]},
        {**ORDER, "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "1.001"}]},
        {**ORDER, "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "ten"}]},
        [ORDER],
    ],
)
def test_orders_with_missing_or_malformed_fields_are_answered_with_400(
    naive: NaiveChain, body: object
) -> None:
    assert naive.client.simulate_post("/orders", json=body).status_code == 400


def test_ready_answers_200_when_the_database_answers(naive: NaiveChain) -> None:
    assert naive.client.simulate_get("/ready").status_code == 200
    assert naive.client.simulate_get("/health").status_code == 200


def test_the_config_reads_the_naive_variables_and_keeps_defaults_for_the_rest() -> None:
    config = load_config({"NAIVE_BROKER_URL": "amqp://guest:guest@h:5672/v"})
    assert config.broker_url == "amqp://guest:guest@h:5672/v"
    assert config.orders_database_url == NaiveConfig().orders_database_url


def test_the_children_of_up_are_recognisable_by_their_command_lines() -> None:
    front, worker = child_commands("127.0.0.1", 8090, 8)
    assert {"tests.bench.naive", "serve"} <= set(front)
    assert "tests.bench.naive.actors" in worker
    assert worker[worker.index("--threads") + 1] == "8"


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_up_stops_the_other_child_and_exits_when_a_child_dies() -> None:
    # Given two children, one of which fails
    survivor = sleeper()
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    # When they are supervised
    code = supervise([survivor, failing], threading.Event(), grace=5)
    # Then the failure's code is returned and the survivor was stopped
    assert code == 3
    assert survivor.returncode is not None


def test_up_exits_with_128_plus_the_signal_of_a_child_killed_by_a_signal() -> None:
    # Given a child that is killed
    survivor, killed = sleeper(), sleeper()
    killed.kill()
    # When they are supervised
    code = supervise([survivor, killed], threading.Event(), grace=5)
    # Then up reports it as a shell would (128 + SIGKILL)
    assert code == 137
    assert survivor.returncode == -15


def test_up_stops_its_children_when_asked_to() -> None:
    # Given two running children and a stop request (what SIGINT and SIGTERM do)
    children = [sleeper(), sleeper()]
    stopping = threading.Event()
    stopping.set()
    # When they are supervised
    code = supervise(children, stopping, grace=5)
    # Then both were terminated and up exits cleanly
    assert code == 0
    assert [child.returncode for child in children] == [-15, -15]
