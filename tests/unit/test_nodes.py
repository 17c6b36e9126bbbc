"""Several servers in one setting: a RabbitMQ cluster's nodes in ``BROKER_URL`` and
libpq's multi-host PostgreSQL URLs (the real servers: tests/integration/test_multi_node.py)."""

from __future__ import annotations

import pytest

from actors.broker import connection_urls
from ops.settings import Settings, SettingsError
from ops.shared.persistence.database import open_database
from ops.shared.values.nodes import broker_nodes, multi_host, redacted
from ops.unreachable import describe

NODES = "amqp://u:pw@rabbit-1:5672/%2F, amqp://u:pw@rabbit-2:5672/%2F;amqp://u:pw@rabbit-3/%2F"
MULTI = "postgresql://u:pw@pg-1:5432,pg-2:5433/orders?target_session_attrs=read-write"


def test_a_broker_url_may_name_several_nodes_separated_by_commas_semicolons_or_spaces() -> None:
    assert broker_nodes(NODES) == [
        "amqp://u:pw@rabbit-1:5672/%2F",
        "amqp://u:pw@rabbit-2:5672/%2F",
        "amqp://u:pw@rabbit-3/%2F",
    ]
    assert broker_nodes("amqp://guest:guest@127.0.0.1:5672/%2F\n") == [
        "amqp://guest:guest@127.0.0.1:5672/%2F"
    ]


def test_a_node_that_is_not_an_amqp_url_is_a_configuration_error_without_its_password() -> None:
    env = {
        "BROKER_URL": "amqp://u:pw@rabbit-1/%2F,http://u:secret@rabbit-2/",
        "ORDERS_DATABASE_URL": "postgresql://db/orders",
        "INVOICES_DATABASE_URL": "postgresql://db/invoices",
    }
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert "BROKER_URL" in str(error.value) and "rabbit-2" in str(error.value)
    assert "secret" not in str(error.value)


def test_with_several_nodes_each_is_tried_once_in_order_and_one_node_three_times() -> None:
    several = connection_urls(NODES)
    assert [url.split("?")[0] for url in several] == broker_nodes(NODES)
    assert all("connection_attempts=1" in url for url in several)
    (one,) = connection_urls("amqp://u:pw@rabbit-1/%2F")
    assert "connection_attempts=3" in one


def test_passwords_are_hidden_in_every_url_of_a_setting() -> None:
    assert redacted(NODES).count("***") == 3 and "pw" not in redacted(NODES)
    assert redacted(MULTI) == (
        "postgresql://u:***@pg-1:5432,pg-2:5433/orders?target_session_attrs=read-write"
    )
    assert redacted("postgresql://postgres@127.0.0.1:5432/orders") == (
        "postgresql://postgres@127.0.0.1:5432/orders"
    )


def test_a_multi_host_postgresql_url_goes_to_libpq_whole() -> None:
    assert multi_host(MULTI) and not multi_host("postgresql://u:pw@pg-1:5432/orders")
    database = open_database(MULTI, read_only=True)
    assert database.database == "orders"
    assert database.connect_params["dsn"] == MULTI
    assert database.connect_params["options"] == "-c default_transaction_read_only=on"


def test_an_unreachable_multi_host_database_is_named_by_its_variable() -> None:
    settings = Settings(
        broker_url="amqp://u:pw@rabbit-1/%2F",
        orders_database_url=MULTI,
        invoices_database_url="postgresql://u:pw@pg-1:5432/invoices",
    )
    error = Exception('connection to server at "pg-2", port 5433 failed: Connection refused')
    line = describe(error, settings)
    assert line.startswith("cannot reach the orders database (check ORDERS_DATABASE_URL=")
    assert "pw" not in line
