"""Money parsing, the order and invoice rules, and settings: pure functions, no I/O."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoices.domain import (
    InvoiceNotPayable,
    InvoiceStatus,
    VoidDecision,
    WrongAmount,
    check_payment,
    credit_allows,
    decide_void,
    format_number,
)
from ops.settings import PLACEHOLDER, Settings, SettingsError
from ops.shared.values.money import AmountError, format_minor, parse_amount
from orders.domain import (
    Decision,
    OrderNotCancellable,
    Status,
    check_customer_cancel,
    decide_cancel,
    decide_confirm,
    decide_paid,
)


@pytest.mark.parametrize(
    ("text", "minor"), [("12.34", 1234), ("1", 100), ("0.1", 10), ("100000.00", 10_000_000)]
)
def test_decimal_strings_parse_to_minor_units(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(
    "value",
    ["1.001", "NaN", "-Infinity", "0", "-1.00", " 1.00", "", "1e400", "abc", 1.5, 2, None, True],
)
def test_anything_else_is_not_an_amount(value: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(value)


def test_minor_units_format_with_two_places() -> None:
    assert [format_minor(m) for m in (0, 5, 1234, -250)] == ["0.00", "0.05", "12.34", "-2.50"]


def test_orders_only_move_forward() -> None:
    assert decide_confirm(Status.PENDING) is Decision.APPLY
    assert decide_confirm(Status.CANCELLED) is Decision.COMPENSATE
    assert decide_confirm(Status.PAID) is Decision.IGNORE
    assert decide_paid(Status.CONFIRMED) is Decision.APPLY
    assert decide_paid(Status.CANCELLED) is Decision.IGNORE
    assert decide_cancel(Status.PENDING) is Decision.APPLY
    assert decide_cancel(Status.CONFIRMED) is Decision.IGNORE
    assert decide_cancel(Status.PAID) is Decision.IGNORE


def test_customers_cannot_cancel_paid_or_cancelled_orders() -> None:
    check_customer_cancel(Status.PENDING)
    check_customer_cancel(Status.CONFIRMED)
    for status in (Status.PAID, Status.CANCELLED):
        with pytest.raises(OrderNotCancellable):
            check_customer_cancel(status)


def test_the_credit_rule_allows_up_to_the_limit_exactly() -> None:
    assert credit_allows(outstanding_minor=600, total_minor=400, limit_minor=1000)
    assert not credit_allows(outstanding_minor=600, total_minor=401, limit_minor=1000)


def test_payments_and_voids_follow_the_invoice_status() -> None:
    check_payment(InvoiceStatus.ISSUED, 100, 100)
    with pytest.raises(WrongAmount):
        check_payment(InvoiceStatus.ISSUED, 99, 100)
    for status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
        with pytest.raises(InvoiceNotPayable):
            check_payment(status, 100, 100)
    assert decide_void(InvoiceStatus.ISSUED) is VoidDecision.VOID
    assert decide_void(InvoiceStatus.PAID) is VoidDecision.REFUND
    assert decide_void(InvoiceStatus.VOID) is VoidDecision.IGNORE
    assert format_number(42) == "INV-000042"


def test_settings_default_to_standalone() -> None:
    settings = Settings.from_env({})
    assert not settings.distributed
    assert settings.database_url("orders") == "sqlite:///var/orders.sqlite3"
    assert (settings.orders_port, settings.invoices_port) == (3333, 3334)
    assert settings.default_credit_limit == Decimal("10000.00")
    assert settings.saga_timeout == 300.0


def test_settings_read_the_environment_and_refuse_nonsense() -> None:
    settings = Settings.from_env(
        {
            "ORDERS_PORT": "8080",
            "ORDERS_SAGA_TIMEOUT": "30",
            "INVOICES_DEFAULT_CREDIT_LIMIT": "50.00",
            "ORDERFLOW_TRACE_SQL": "true",
            "RABBITMQ_QUEUE_TYPE": "quorum",
            "ORDERFLOW_TRACE_URL_TEMPLATE": "http://localhost:16686/trace/{trace_id}",
        }
    )
    assert (settings.orders_port, settings.saga_timeout) == (8080, 30.0)
    assert settings.trace_sql and not Settings.from_env({}).trace_sql
    assert (settings.queue_type, Settings.from_env({}).queue_type) == ("quorum", "classic")
    assert Settings.from_env(settings.to_env()) == settings
    for bad in (
        {"ORDERS_PORT": "x"},
        {"ORDERS_SAGA_TIMEOUT": "-1"},
        {"INVOICES_DEFAULT_CREDIT_LIMIT": "1.001"},
        {"MAX_BACKOFF_MS": "1800000"},
        {"BROKER_URL": "amqp://localhost"},
        {"ORDERFLOW_TRACE_SQL": "maybe"},
        {"RABBITMQ_QUEUE_TYPE": "mirrored"},
        {"ORDERFLOW_JWT_SECRET": "change-me-to-the-output-of-openssl-rand-hex-32"},
        {"ORDERFLOW_TRACE_URL_TEMPLATE": "http://localhost:16686/trace/"},  # no {trace_id}
        {"ORDERFLOW_TRACE_URL_TEMPLATE": "javascript:alert('{trace_id}')"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


BOTH_DATABASES = {
    "ORDERS_DATABASE_URL": "postgresql://db/orders",
    "INVOICES_DATABASE_URL": "postgresql://db/invoices",
}
NODES = "amqp://u:pw@rabbit-1/%2F,http://u:secret@rabbit-2/"


@pytest.mark.parametrize(
    ("environ", "fields"),
    [
        ({"MAX_RETRIES": "-1"}, {"max_retries": -1}),
        ({"ORDERS_PORT": "0"}, {"orders_port": 0}),
        ({"ORDERS_SAGA_TIMEOUT": "-1.0"}, {"saga_timeout": -1.0}),
        ({"GATEWAY_TIMEOUT": "inf"}, {"gateway_timeout": float("inf")}),
        ({"INVOICES_DEFAULT_CREDIT_LIMIT": "1.001"}, {"default_credit_limit": Decimal("1.001")}),
        ({"INVOICES_DEFAULT_CREDIT_LIMIT": "-1"}, {"default_credit_limit": Decimal("-1")}),
        ({"MAX_BACKOFF_MS": "1800000"}, {"max_backoff_ms": 1_800_000}),
        ({"RABBITMQ_QUEUE_TYPE": "mirrored"}, {"queue_type": "mirrored"}),
        ({"ORDERFLOW_JWT_SECRET": "too-short"}, {"jwt_secret": "too-short"}),
        ({"ORDERFLOW_JWT_SECRET": PLACEHOLDER + "-" * 40}, {"jwt_secret": PLACEHOLDER + "-" * 40}),
        ({"ORDERFLOW_JWT_PRIVATE_KEY": "pem"}, {"jwt_private_key": "pem"}),
        ({"BROKER_URL": "amqp://u:pw@rabbit-1/%2F"}, {"broker_url": "amqp://u:pw@rabbit-1/%2F"}),
        (
            {"BROKER_URL": NODES, **BOTH_DATABASES},
            {
                "broker_url": NODES,
                "orders_database_url": BOTH_DATABASES["ORDERS_DATABASE_URL"],
                "invoices_database_url": BOTH_DATABASES["INVOICES_DATABASE_URL"],
            },
        ),
    ],
)
def test_settings_built_directly_refuse_what_the_environment_would_with_the_same_error(
    environ: dict[str, str], fields: dict[str, Any]
) -> None:
    with pytest.raises(SettingsError) as from_env:
        Settings.from_env(environ)
    with pytest.raises(SettingsError) as built:
        Settings(**fields)
    assert str(built.value) == str(from_env.value)


def test_fully_set_settings_survive_the_round_trip_through_the_environment() -> None:
    settings = Settings(
        broker_url="amqp://u:pw@rabbit-1/%2F,amqp://u:pw@rabbit-2/%2F",
        orders_database_url="postgresql://db/orders",
        invoices_database_url="postgresql://db/invoices",
        data_dir=Path("/srv/orderflow"),
        host="::1",
        orders_port=4333,
        invoices_port=4334,
        http_threads=3,
        worker_processes=2,
        worker_threads=5,
        saga_timeout=12.5,
        default_credit_limit=Decimal("12.30"),
        idempotency_ttl=0.1,
        max_retries=0,
        max_redeliveries=0,
        min_backoff_ms=1,
        max_backoff_ms=2,
        relay_batch=7,
        relay_poll_interval=0.25,
        log_level="DEBUG",
        jwt_secret="s" * 32,
        jwt_public_key="public pem",
        jwt_private_key="private pem",
        jwt_issuer="issuer",
        jwt_audience="audience",
        gateway_port=4000,
        audit_port=4335,
        orders_url="http://orders:4333",
        invoices_url="http://invoices:4334",
        audit_url="http://audit:4335",
        audit_interval=1.5,
        gateway_timeout=0.5,
        orders_worker_metrics_port=10191,
        invoices_worker_metrics_port=10192,
        orders_relay_metrics_port=10301,
        invoices_relay_metrics_port=10302,
        traces_exporter="otlp",
        queue_type="quorum",
        trace_sql=True,
        log_format="json",
        operator_name="carol",
        trace_url_template="https://traces.example/{trace_id}",
    )
    environ = settings.to_env()
    # every variable is written but ORDERFLOW_PROCESS: a child process names itself
    assert set(environ) == set(Settings.variables()) - {"ORDERFLOW_PROCESS"}
    assert (environ["ORDERS_SAGA_TIMEOUT"], environ["ORDERFLOW_TRACE_SQL"]) == ("12.5", "true")
    assert Settings.from_env(environ) == settings
    assert Settings.from_env({**environ, "ORDERFLOW_PROCESS": "orders-api"}).process_name == (
        "orders-api"
    )


def test_every_variable_settings_read_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row)}
    assert set(Settings.variables()) - documented == set()
    assert "ORDERS_URL" in documented and "INVOICES_RELAY_METRICS_PORT" in documented
