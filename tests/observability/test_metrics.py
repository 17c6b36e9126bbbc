"""orderflow's metrics count what happens: the saga on the stub broker and SQLite moves
the right series, the HTTP middleware labels routes by template, ``/metrics`` is public,
the relay's chore sets the gauges, and worker processes write where Dramatiq's exporter
reads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import falcon
import falcon.testing
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from invoices import service as invoices
from ops import bootstrap, gauges, supervisor
from ops.services import described
from ops.settings import Settings
from ops.shared.web import exposition
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.queries import get_order
from tests.unit.conftest import StubSystem

ORDER = {"currency": "EUR", "lines": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "10.00"}]}


def value(name: str, **labels: str) -> float:
    """The current value of a series of this process's registry (0 if absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Values of series before and after something happens."""

    def __init__(self, *series: tuple[str, dict[str, str]]) -> None:
        self.series = series
        self.before = [value(name, **labels) for name, labels in series]

    def __call__(self) -> list[float]:
        return [
            value(name, **labels) - before
            for (name, labels), before in zip(self.series, self.before, strict=True)
        ]


def place(customer: str = "c1", price_minor: int = 1000) -> str:
    order = orders.place_order(NewOrder(customer, "EUR", (Line("SKU-1", 1, price_minor),)))
    return str(order.id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the saga ------------------------------------------------------------------------------


def test_a_confirmed_order_observes_one_saga_duration_as_confirmed(
    stub_system: StubSystem,
) -> None:
    delta = Delta(
        ("orderflow_saga_duration_seconds_count", {"outcome": "confirmed"}),
        ("orderflow_saga_duration_seconds_count", {"outcome": "cancelled"}),
    )
    order_id = place()
    stub_system.drain()
    assert get_order(order_id).status == "confirmed"
    assert delta() == [1, 0]
    # Paying later is not a first settlement: the saga's duration is not observed again
    invoices.pay_invoice(get_order(order_id).invoice_id, "10.00", None)
    stub_system.drain()
    assert get_order(order_id).status == "paid"
    assert delta() == [1, 0]


def test_a_customer_cancel_counts_a_compensation_and_a_voided_invoice(
    stub_system: StubSystem,
) -> None:
    order_id = place()
    stub_system.drain()
    delta = Delta(
        ("orderflow_compensations_total", {"reason": "customer_cancelled"}),
        ("orderflow_invoices_voided_total", {"refund": "false"}),
        ("orderflow_invoices_voided_total", {"refund": "true"}),
    )
    orders.cancel_order_by_customer(order_id, None)
    stub_system.drain()
    assert delta() == [1, 1, 0]


def test_a_credit_rejection_is_a_compensation_and_settles_the_saga_as_cancelled(
    stub_system: StubSystem,
) -> None:
    delta = Delta(
        ("orderflow_compensations_total", {"reason": "credit_rejected"}),
        ("orderflow_saga_duration_seconds_count", {"outcome": "cancelled"}),
    )
    order_id = place("poor", price_minor=500_000)  # over the 1000.00 limit
    stub_system.drain()
    assert get_order(order_id).cancel_reason == "credit_rejected"
    assert delta() == [1, 1]


def test_a_voided_paid_invoice_counts_as_a_refund(stub_system: StubSystem) -> None:
    order_id = place()
    stub_system.drain()
    invoices.pay_invoice(get_order(order_id).invoice_id, "10.00", None)
    delta = Delta(("orderflow_invoices_voided_total", {"refund": "true"}))
    assert invoices.void_invoice(order_id, "c1", "customer_cancelled", dedupe_key="k") == "refund"
    assert delta() == [1]


def test_an_exhausted_step_counts_its_dead_letter_once_per_record(
    stub_system: StubSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    import peewee

    def broken(*args: object, **kwargs: object) -> str:
        raise peewee.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(invoices, "issue_invoice", broken)
    delta = Delta(
        ("orderflow_dead_letters_total", {"service": "invoices", "actor": "issue_invoice"}),
        ("orderflow_compensations_total", {"reason": "invoice_failed"}),
    )
    place()
    stub_system.drain()
    assert delta() == [1, 1]


def test_a_dead_letter_already_recorded_is_not_counted_again(databases: dict) -> None:
    fields = {
        "message_id": uuid.uuid4().hex,
        "queue_name": "orders",
        "actor_name": "confirm_order",
        "dedupe_key": "k-1",
        "order_id": None,
        "message": "{}",
        "error": "boom",
        "attempts": 3,
    }
    orders_delta = Delta(
        ("orderflow_dead_letters_total", {"service": "orders", "actor": "confirm_order"})
    )
    assert orders.record_dead_letter(**fields) is True
    assert orders.record_dead_letter(**fields) is False
    assert orders_delta() == [1]
    invoices_delta = Delta(
        ("orderflow_dead_letters_total", {"service": "invoices", "actor": "void_invoice"}),
        ("orderflow_dead_letters_total", {"service": "invoices", "actor": "issue_invoice"}),
    )
    assert invoices.record_dead_letter(**{**fields, "actor_name": "void_invoice"}) is True
    assert invoices.record_dead_letter(**{**fields, "actor_name": "void_invoice"}) is False
    issuance = {k: v for k, v in fields.items() if k not in ("order_id", "error")}
    issuance.update(message_id=uuid.uuid4().hex, actor_name="issue_invoice")
    assert invoices.fail_issuance("o-1", "boom", **issuance) is True
    assert invoices.fail_issuance("o-1", "boom", **issuance) is False
    assert invoices_delta() == [1, 1]


def test_the_gauge_chore_reads_the_databases(stub_system: StubSystem) -> None:
    confirmed = place()
    stub_system.drain()
    place("c2")  # pending: its event is still in the outbox
    orders.record_dead_letter(
        message_id=uuid.uuid4().hex,
        queue_name="orders",
        actor_name="cancel_order",
        dedupe_key=None,
        order_id=confirmed,
        message="{}",
        error="boom",
        attempts=1,
    )
    gauges.refresh(described("orders"), saga_timeout=300.0)
    gauges.refresh(described("invoices"), saga_timeout=300.0)
    assert value("orderflow_orders", status="confirmed") == 1
    assert value("orderflow_orders", status="pending") == 1
    assert value("orderflow_orders", status="cancelled") == 0
    assert value("orderflow_outbox_backlog", service="orders") == 1
    assert value("orderflow_outbox_lag_seconds", service="orders") >= 0
    assert value("orderflow_outbox_backlog", service="invoices") == 0
    assert value("orderflow_outbox_lag_seconds", service="invoices") == 0
    assert value("orderflow_dead_letters", service="orders") == 1
    assert value("orderflow_dead_letters", service="invoices") == 0
    assert 0 <= value("orderflow_oldest_pending_order_age_seconds", service="orders") < 60
    assert value("orderflow_saga_timeout_seconds", service="orders") == 300
    # Once the saga settles, nothing is pending any more
    stub_system.drain()
    gauges.refresh(described("orders"), saga_timeout=300.0)
    assert value("orderflow_oldest_pending_order_age_seconds", service="orders") == 0
    assert value("orderflow_outbox_backlog", service="orders") == 0


def test_series_with_known_labels_start_at_zero_and_match_the_domains() -> None:
    from actors import catalogue, invoicing, ordering
    from orders.domain import CancelReason, Status

    actors = {
        "orders": tuple(actor.__name__ for actor in ordering.ACTORS)
        + tuple(step.name for step in ordering.BATCHES),
        "invoices": tuple(actor.__name__ for actor in invoicing.ACTORS)
        + tuple(step.name for step in invoicing.BATCHES),
    }
    assert {queue: tuple(catalogue.actors_of(queue)) for queue in actors} == actors
    # Declared before anything happened: a first dead letter is an increase from 0
    for service, names in actors.items():
        for actor in names:
            labels = {"service": service, "actor": actor}
            assert REGISTRY.get_sample_value("orderflow_dead_letters_total", labels) is not None
        labels = {"service": service}
        assert REGISTRY.get_sample_value("orderflow_idempotent_replays_total", labels) is not None
    for reason in CancelReason:
        labels = {"reason": reason.value}
        assert REGISTRY.get_sample_value("orderflow_compensations_total", labels) is not None
    for status in set(Status) - {Status.PENDING}:
        labels = {"outcome": status.value}
        count = REGISTRY.get_sample_value("orderflow_saga_duration_seconds_count", labels)
        assert count is not None


def test_each_relay_refreshes_the_gauges_as_a_chore(stub_system: StubSystem) -> None:
    for relay in stub_system.relays.values():
        assert "refresh-gauges" in [chore.name for chore in relay.chores]


# -- HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def orders_client(settings: Settings, databases: dict, token) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(
        bootstrap.build_app(settings, "orders"), headers=bearer(token("c1"))
    )


def http(route: str, method: str, status: str, service: str = "orders") -> tuple[str, dict]:
    labels = {"service": service, "route": route, "method": method, "status": status}
    return ("orderflow_http_requests_total", labels)


def test_requests_are_labelled_by_route_template_never_by_raw_path(orders_client) -> None:
    item = "/orders/{order_id:uuid}"
    delta = Delta(
        http("/orders", "POST", "201"),
        http(item, "GET", "200"),
        http(item, "GET", "404"),
        http("unmatched", "GET", "404"),
        (
            "orderflow_http_request_duration_seconds_count",
            {"service": "orders", "route": item, "method": "GET"},
        ),
    )
    created = orders_client.simulate_post("/orders", json=ORDER).json
    assert orders_client.simulate_get(f"/orders/{created['id']}").status_code == 200
    assert orders_client.simulate_get(f"/orders/{uuid.uuid4()}").status_code == 404
    assert orders_client.simulate_get("/no/such/path").status_code == 404
    assert delta() == [1, 1, 1, 1, 2]
    exposed = orders_client.simulate_get("/metrics").text
    assert created["id"] not in exposed  # ids never become label values


def test_a_request_refused_before_routing_is_labelled_with_its_route(orders_client) -> None:
    delta = Delta(http("/orders/{order_id:uuid}/cancel", "POST", "401"))
    result = orders_client.simulate_post(
        f"/orders/{uuid.uuid4()}/cancel", headers={"Authorization": "Bearer nope"}
    )
    assert result.status_code == 401
    assert delta() == [1]


def test_a_server_error_is_counted_as_a_500(orders_client, monkeypatch) -> None:
    def explode(new: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(orders, "place_order", explode)
    delta = Delta(http("/orders", "POST", "500"))
    assert orders_client.simulate_post("/orders", json=ORDER).status_code == 500
    assert delta() == [1]


def test_an_idempotent_replay_is_counted(orders_client) -> None:
    delta = Delta(("orderflow_idempotent_replays_total", {"service": "orders"}))
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = orders_client.simulate_post("/orders", json=ORDER, headers=headers)
    assert delta() == [0]
    again = orders_client.simulate_post("/orders", json=ORDER, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert delta() == [1]


@pytest.mark.parametrize("service", ["orders", "invoices", "gateway"])
def test_metrics_are_public_on_every_front_in_prometheus_text_format(
    settings: Settings, databases: dict, service: str
) -> None:
    client = falcon.testing.TestClient(bootstrap.build_app(settings, service))
    client.simulate_get("/health")
    result = client.simulate_get("/metrics")  # no token
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(result.text)}
    health = [
        sample
        for sample in families["orderflow_http_requests"].samples
        if sample.labels.get("route") == "/health" and sample.name.endswith("_total")
    ]
    assert {sample.labels["service"] for sample in health} >= {service}
    assert "orderflow_dead_letters" in families  # the gauge next to its counter
    assert "orderflow_dead_letters_total" in result.text


def test_the_gateway_labels_its_own_routes(settings: Settings) -> None:
    client = falcon.testing.TestClient(bootstrap.build_app(settings, "gateway"))
    delta = Delta(http("/me/orders/{order_id:uuid}", "GET", "401", service="gateway"))
    assert client.simulate_get(f"/me/orders/{uuid.uuid4()}").status_code == 401
    assert delta() == [1]


# -- where the numbers leave the process -----------------------------------------------------


def test_a_worker_process_writes_orderflow_metrics_where_dramatiqs_exporter_reads(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "orders-worker"
    script = (
        "import ops.worker\n"
        "ops.worker._share_metrics_directory()\n"
        "from ops.shared.telemetry import metrics\n"
        "metrics.compensated('expired')\n"
        "metrics.saga_settled('confirmed', __import__('datetime').datetime(2026, 1, 1),"
        " __import__('datetime').datetime(2026, 1, 1, 0, 0, 2))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["dramatiq_prom_db"] = str(directory)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    # What Dramatiq's exporter does: collect the directory's files
    reader = (
        "import collections, json, prometheus_client as p\n"
        "from prometheus_client import multiprocess\n"
        "r = p.CollectorRegistry(); multiprocess.MultiProcessCollector(r)\n"
        "totals = collections.Counter()\n"
        "for f in r.collect():\n"
        "    for s in f.samples:\n"
        "        if s.name.startswith('orderflow_') and 'bucket' not in s.name:\n"
        "            totals[s.name] += s.value\n"
        "print(json.dumps(totals))\n"
    )
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True
    )
    samples = json.loads(out.stdout)
    assert samples["orderflow_compensations_total"] == 1
    assert samples["orderflow_saga_duration_seconds_count"] == 1
    assert samples["orderflow_saga_duration_seconds_sum"] == 2


def test_orderflow_up_gives_each_worker_pool_its_port_and_a_fresh_directory(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, orders_worker_metrics_port=19191, host="0.0.0.0")
    children = {child.name: child for child in supervisor.plan(settings)}
    env = children["orders-worker"].env
    assert env["dramatiq_prom_port"] == "19191"
    assert env["dramatiq_prom_host"] == "0.0.0.0"
    assert env["dramatiq_prom_db"] == env["PROMETHEUS_MULTIPROC_DIR"]
    assert Path(env["dramatiq_prom_db"]) == (tmp_path / "metrics" / "orders-worker").resolve()
    assert children["invoices-worker"].env["dramatiq_prom_port"] == "9192"
    assert children["orders-relay"].env == children["orders-api"].env == {}
    stale = Path(env["dramatiq_prom_db"]) / "counter_123.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    supervisor.fresh_metrics_directory(env)
    assert list(Path(env["dramatiq_prom_db"]).iterdir()) == []


def test_metrics_ports_are_settings() -> None:
    env = {
        "ORDERS_WORKER_METRICS_PORT": "19191",
        "INVOICES_WORKER_METRICS_PORT": "19192",
        "ORDERS_RELAY_METRICS_PORT": "19301",
        "INVOICES_RELAY_METRICS_PORT": "19302",
    }
    settings = Settings.from_env(env)
    assert [settings.metrics_port(part) for part in env_parts()] == [19191, 19192, 19301, 19302]
    assert Settings.from_env(settings.to_env()) == settings
    defaults = Settings()
    assert [defaults.metrics_port(part) for part in env_parts()] == [9191, 9192, 9301, 9302]


def env_parts() -> list[str]:
    return ["orders-worker", "invoices-worker", "orders-relay", "invoices-relay"]


def test_a_relay_whose_metrics_port_is_taken_goes_on_without_metrics(caplog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert exposition.serve("127.0.0.1", taken.getsockname()[1]) is False
    assert "cannot serve metrics" in caplog.text
