"""Money parsing, the order and invoice rules, and settings: pure functions, no I/O."""

from __future__ import annotations

from decimal import Decimal

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
from ops.settings import Settings, SettingsError
from ops.shared.money import AmountError, format_minor, parse_amount
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
