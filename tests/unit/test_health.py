"""The audit part (``orderflow serve audit``) and the gateway's ``/ops/health``: the last
audit, outbox backlogs, dead letters and queues, for operators; SQLite and the stub
broker (the real RabbitMQ and PostgreSQL are in tests/integration/test_console_browser.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import falcon
import falcon.testing
import peewee
import pytest

from gateway.app import create_app as create_gateway
from invoices.models import Invoice
from ops import bootstrap
from ops.audit.report import AuditReport, InvariantResult
from ops.audit.watch import HealthWatch
from ops.settings import Settings
from ops.shared.persistence.database import open_database
from ops.shared.values.clock import utcnow

from .conftest import StubSystem
from .gateway_support import assert_documented, refusing_port, served
from .test_openapi import Description

ORDER = {"currency": "EUR", "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "12.34"}]}


def wait_for(condition: Callable[[], object], seconds: float = 10.0) -> object:
    """Poll ``condition`` until it returns something true, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true within {seconds} s")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def audit_app(settings: Settings) -> Iterator[falcon.App]:
    """The audit part's app as ``orderflow serve audit`` builds it; its audit thread is
    stopped afterwards."""
    watch = bootstrap.health_watch(settings)
    try:
        yield bootstrap.build_audit_app(settings, watch)
    finally:
        watch.stop()


@pytest.fixture
def audit_part(settings: Settings, stub_system: StubSystem) -> Iterator[falcon.testing.TestClient]:
    with audit_app(settings) as app:
        yield falcon.testing.TestClient(app)


def audited(client: falcon.testing.TestClient, token: str) -> dict:
    """The first report whose audit run has ended."""

    def report() -> dict | None:
        result = client.simulate_get("/report", headers=bearer(token))
        assert result.status_code == 200, result.text
        return result.json if result.json["audit"]["report"] else None

    return wait_for(report)  # type: ignore[return-value]


def place(settings: Settings, token: str) -> str:
    orders = falcon.testing.TestClient(bootstrap.build_app(settings, "orders"))
    result = orders.simulate_post("/orders", json=ORDER, headers=bearer(token))
    assert result.status_code == 201, result.text
    return result.json["id"]


# -- the audit part -----------------------------------------------------------------------


def test_the_report_shows_the_seven_invariants_holding_on_a_settled_system(
    settings: Settings, stub_system: StubSystem, audit_part, token
) -> None:
    # Given an order the saga confirmed
    place(settings, token("c1"))
    stub_system.drain()
    # When an operator asks the audit part for its report
    report = audited(audit_part, token("ops", "operator"))
    # Then the last audit holds I1-I7, both outboxes are empty, and there is no RabbitMQ
    audit = report["audit"]
    assert [inv["code"] for inv in audit["report"]["invariants"]] == [f"I{n}" for n in range(1, 8)]
    assert audit["report"]["ok"] is True
    assert audit["error"] is None and audit["duration_seconds"] >= 0
    assert report["services"] == [
        {"service": s, "outbox_pending": 0, "outbox_oldest_seconds": None, "dead_letters": 0}
        for s in ("orders", "invoices")
    ]
    assert report["queues"] is None  # standalone's in-process broker: nothing to ask
    assert report["problems"] == []
    result = audit_part.simulate_get("/report", headers=bearer(token("ops", "operator")))
    Description("audit").check("GET", "/report", result)


def test_an_event_not_yet_published_shows_in_its_outbox_backlog(
    settings: Settings, stub_system: StubSystem, audit_part, token
) -> None:
    # Given an order placed whose OrderPlaced the relay has not published yet
    place(settings, token("c1"))
    # When an operator reads the report
    report = audited(audit_part, token("ops", "operator"))
    # Then the orders outbox holds one event, with its age
    orders = next(s for s in report["services"] if s["service"] == "orders")
    assert orders["outbox_pending"] == 1
    assert orders["outbox_oldest_seconds"] is not None and orders["outbox_oldest_seconds"] >= 0


def test_a_broken_invariant_is_reported_with_its_offender(
    settings: Settings, stub_system: StubSystem, token
) -> None:
    # Given a confirmed order whose invoice total was then changed behind the saga's back
    order_id = place(settings, token("c1"))
    stub_system.drain()
    Invoice.update(total_minor=Invoice.total_minor + 1).where(
        Invoice.order_id == order_id
    ).execute()
    # When an operator reads the report
    with audit_app(settings) as app:
        report = audited(falcon.testing.TestClient(app), token("ops", "operator"))
    # Then I4 is broken and names the order; the others hold
    invariants = {inv["code"]: inv for inv in report["audit"]["report"]["invariants"]}
    assert report["audit"]["report"]["ok"] is False
    assert (invariants["I4"]["ok"], invariants["I4"]["offenders"]) == (False, [order_id])
    assert [code for code, inv in invariants.items() if not inv["ok"]] == ["I4"]


def test_only_operators_may_read_the_report(audit_part, token) -> None:
    assert audit_part.simulate_get("/report").status_code == 401
    result = audit_part.simulate_get("/report", headers=bearer(token("c1")))
    assert result.status_code == 403
    assert result.headers["content-type"] == "application/problem+json"


def test_the_audit_part_is_ready_when_both_databases_answer(audit_part) -> None:
    result = audit_part.simulate_get("/ready")
    assert result.status_code == 200, result.text
    assert result.json["checks"] == {
        "orders-database": "ok",
        "invoices-database": "ok",
        "broker": "ok",
    }


def test_a_read_only_postgresql_url_asks_the_server_for_read_only_transactions() -> None:
    database = open_database(
        "postgresql://u@127.0.0.1:1/db?options=-c%20statement_timeout%3D5000", read_only=True
    )
    assert database.connect_params["options"] == (
        "-c statement_timeout=5000 -c default_transaction_read_only=on"
    )
    plain = open_database("postgresql://u@127.0.0.1:1/db")
    assert "options" not in plain.connect_params


# -- the watch: the audit thread, readings and what cannot be read ---------------------------


def report_at(ok: bool = True) -> AuditReport:
    return AuditReport(utcnow(), [InvariantResult("I1", "no order is overdue", ok, 0, [])])


class Readings:
    """Counts the readings a watch makes; raises ``error`` when it is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def service(self) -> tuple[int, float | None, int]:
        self.calls += 1
        if self.error:
            raise self.error
        return 3, 4.25, 1

    def queues(self) -> dict[str, tuple[int, int]]:
        if self.error:
            raise self.error
        return {"orders": (5, 1), "orders.XQ": (0, 0)}


def test_a_failed_audit_run_keeps_the_previous_report_and_says_why() -> None:
    outcomes: list[object] = [
        report_at(),
        peewee.OperationalError("server closed the connection\nx"),
    ]

    def audit() -> AuditReport:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    readings = Readings()
    watch = HealthWatch(audit, {"orders": readings.service}, readings.queues, interval=60)
    watch.run_once()
    first = watch.report()["audit"]
    watch.run_once()
    after = watch.report()["audit"]
    assert first["report"] is not None and first["error"] is None
    assert after["report"] == first["report"]
    assert after["error"] == "OperationalError: server closed the connection"
    watch.stop()


def test_what_cannot_be_read_is_a_problem_of_its_part_and_the_rest_still_shows() -> None:
    readings = Readings()
    broken = Readings()
    broken.error = peewee.OperationalError("could not connect to server")
    watch = HealthWatch(
        report_at,
        {"orders": readings.service, "invoices": broken.service},
        broken.queues,
        interval=60,
        fresh=0,
    )
    report = watch.report()
    watch.stop()
    assert report["services"] == [
        {"service": "orders", "outbox_pending": 3, "outbox_oldest_seconds": 4.2, "dead_letters": 1}
    ]
    assert report["queues"] == []
    assert report["problems"] == [
        {"part": "invoices database", "detail": "OperationalError: could not connect to server"},
        {"part": "broker", "detail": "OperationalError: could not connect to server"},
    ]


def test_readings_are_served_again_while_fresh_and_read_again_after() -> None:
    readings = Readings()
    fresh = HealthWatch(report_at, {"orders": readings.service}, readings.queues, interval=60)
    for _ in range(5):
        assert fresh.report()["queues"] == [
            {"queue": "orders", "messages": 5, "consumers": 1},
            {"queue": "orders.XQ", "messages": 0, "consumers": 0},
        ]
    assert readings.calls == 1
    again = Readings()
    stale = HealthWatch(report_at, {"orders": again.service}, again.queues, interval=60, fresh=0)
    for _ in range(5):
        stale.report()
    assert again.calls == 5
    fresh.stop()
    stale.stop()


def test_the_audit_runs_again_after_each_interval_on_its_own_thread() -> None:
    started = threading.Event()

    def audit() -> AuditReport:
        started.set()
        return report_at()

    readings = Readings()
    watch = HealthWatch(audit, {"orders": readings.service}, readings.queues, interval=0.01)
    watch.report()
    assert watch.runs == 0 and not started.is_set()  # nothing runs before it is started
    watch.start()
    wait_for(lambda: watch.runs >= 3)
    watch.stop()


# -- the gateway's /ops/health -----------------------------------------------------------------


def gateway_for(settings: Settings, orders: str, invoices: str, audit: str):
    return falcon.testing.TestClient(
        create_gateway(
            orders_url=orders,
            invoices_url=invoices,
            audit_url=audit,
            timeout=5.0,
            token_keys=bootstrap.token_keys(settings),
        )
    )


def test_the_gateway_composes_the_audit_report_with_each_fronts_readiness(
    settings: Settings, stub_system: StubSystem, token
) -> None:
    apps = [bootstrap.build_app(settings, part) for part in ("orders", "invoices")]
    with (
        audit_app(settings) as audit_part,
        served(settings, *apps, audit_part) as (
            orders,
            invoices,
            audit,
        ),
    ):
        gateway = gateway_for(settings, orders, invoices, audit)
        # When an operator asks the gateway for the health
        result = gateway.simulate_get("/ops/health", headers=bearer(token("ops", "operator")))
        # Then both fronts are ready and the audit part's report is there
        assert result.status_code == 200, result.text
        body = result.json
        assert_documented(body, "SystemHealth")
        assert body["fronts"] == [
            {"service": "orders", "ready": True, "detail": "ready"},
            {"service": "invoices", "ready": True, "detail": "ready"},
        ]
        assert body["report"]["services"][0]["service"] == "orders"
        assert body["partial_failures"] == []
        # And a customer is refused, by the gateway before any call
        refused = gateway.simulate_get("/ops/health", headers=bearer(token("c1")))
        assert refused.status_code == 403


def test_the_gateway_still_answers_when_the_audit_part_is_down(
    settings: Settings, stub_system: StubSystem, token
) -> None:
    apps = [bootstrap.build_app(settings, part) for part in ("orders", "invoices")]
    with served(settings, *apps) as (orders, invoices), refusing_port() as audit:
        gateway = gateway_for(settings, orders, invoices, audit)
        result = gateway.simulate_get("/ops/health", headers=bearer(token("ops", "operator")))
    assert result.status_code == 200, result.text
    assert_documented(result.json, "SystemHealth")
    assert result.json["report"] is None
    [failure] = result.json["partial_failures"]
    assert (failure["service"], failure["reason"]) == ("audit", "unavailable")
    assert [front["ready"] for front in result.json["fronts"]] == [True, True]
