"""The ``orderflow`` command line itself: what every command shares."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys

import peewee
import pika.exceptions
import pytest

from ops import cli, unreachable
from ops.settings import Settings


def test_version_prints_the_installed_release_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"orderflow {importlib.metadata.version('orderflow')}"
    )


def test_version_says_unknown_when_orderflow_was_never_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.version() == "unknown"


# -- exit status 3: what cannot be reached, named --------------------------------------

URLS = {
    "ORDERS_DATABASE_URL": "postgresql://postgres:pw@127.0.0.1:5499/orders",
    "INVOICES_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/invoices",
    "BROKER_URL": "amqp://guest:secret@127.0.0.1:5699/%2F",
}


def settings_with(**overrides: str) -> Settings:
    return Settings(
        orders_database_url=overrides.get("orders", URLS["ORDERS_DATABASE_URL"]),
        invoices_database_url=overrides.get("invoices", URLS["INVOICES_DATABASE_URL"]),
        broker_url=URLS["BROKER_URL"],
    )


@pytest.mark.parametrize(
    ("error", "names"),
    [
        (
            'connection to server at "127.0.0.1", port 5499 failed: Connection refused\n'
            "\tIs the server running on that host?",
            "the orders database (check ORDERS_DATABASE_URL="
            "postgresql://postgres:***@127.0.0.1:5499/orders)",
        ),
        (
            'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database '
            '"invoices" does not exist',
            "the invoices database (check INVOICES_DATABASE_URL="
            "postgresql://postgres@127.0.0.1:5432/invoices)",
        ),
        ("server closed the connection unexpectedly", "PostgreSQL (check ORDERS_DATABASE_URL"),
    ],
)
def test_an_unreachable_database_is_named_with_its_variable_and_no_password(
    error: str, names: str
) -> None:
    line = unreachable.describe(peewee.OperationalError(error), settings_with())
    assert line.startswith(f"cannot reach {names}")
    assert "\n" not in line
    assert "pw" not in line


def test_an_unreachable_broker_is_named_with_its_variable_and_no_password() -> None:
    line = unreachable.describe(pika.exceptions.AMQPConnectionError(), settings_with())
    assert line == (
        "cannot reach RabbitMQ (check BROKER_URL=amqp://guest:***@127.0.0.1:5699/%2F): "
        "AMQPConnectionError"
    )


def test_a_command_that_cannot_reach_its_database_ends_with_one_line_and_status_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, url in URLS.items():
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("ORDERFLOW_JWT_SECRET", "x" * 40)
    assert cli.main(["migrate"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]]
    assert err[0].startswith("orderflow: cannot reach the orders database (check ORDERS_")
    assert "Traceback" not in err[0]


def test_help_lists_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    assert "3  a database or the broker cannot be reached" in out


# -- migrate --status ------------------------------------------------------------------


def test_migrate_status_lists_pending_then_applied_migrations_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    # Given two empty SQLite databases (standalone mode's)
    for name in ("ORDERS_DATABASE_URL", "INVOICES_DATABASE_URL", "BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORDERFLOW_DATA_DIR", str(tmp_path))
    # When the status is asked for
    assert cli.main(["migrate", "--status", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    # Then every migration is pending, and asking applied none
    assert before["orders"]["applied"] == []
    assert before["orders"]["pending"][0] == "0001_initial"
    assert cli.main(["migrate", "--status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    # And after a migrate, the same migrations are applied, with their times
    assert cli.main(["migrate"]) == 0
    capsys.readouterr()
    assert cli.main(["migrate", "--status", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    for service in ("orders", "invoices"):
        assert after[service]["pending"] == []
        assert [entry["name"] for entry in after[service]["applied"]] == before[service]["pending"]
        assert all(entry["applied_at"] for entry in after[service]["applied"])
    # And the text form says so per line
    assert cli.main(["migrate", "--status"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "orders: schema is up to date" in text
    assert any(line.startswith("invoices: 0001_initial  applied ") for line in text)


def test_migrate_json_without_status_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate", "--json"]) == 2
    assert "--json goes with --status" in capsys.readouterr().err


# -- demo --json -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_json_prints_the_summary_alone_on_stdout(tmp_path) -> None:
    # Given standalone mode on free ports and its own data directory
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BROKER_URL", "ORDERS_DATABASE_URL", "INVOICES_DATABASE_URL")
    }
    env.update(
        ORDERFLOW_DATA_DIR=str(tmp_path),
        ORDERS_PORT=str(free_port()),
        INVOICES_PORT=str(free_port()),
        GATEWAY_PORT=str(free_port()),
    )
    # When a small demo runs with --json
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "demo", "--json", "--orders", "24", "--customers", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then stdout is one JSON document (the progress went to stderr), and it passed
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["result"] == "PASS"
    assert summary["mode"] == "standalone"
    assert summary["orders_placed"] == 24
    assert sum(summary["orders_by_status"].values()) == 24
    assert summary["checks"] and all(c["result"] in ("PASS", "SKIP") for c in summary["checks"])
    assert "placing 24 orders" in done.stderr


# -- every command, its exit status ----------------------------------------------------

# Ports nothing listens on, one per server: every connection is refused at once.
DOWN = {
    "ORDERS_DATABASE_URL": "postgresql://postgres:pw@127.0.0.1:1/orders",
    "INVOICES_DATABASE_URL": "postgresql://postgres:pw@127.0.0.1:2/invoices",
    "BROKER_URL": "amqp://guest:secret@127.0.0.1:3/%2F",
    "ORDERS_PORT": "4",  # demo --attach: no front there either
    "INVOICES_PORT": "5",
    "ORDERFLOW_JWT_SECRET": "x" * 40,
}


def orderflow(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m ops.cli ARGS`` as a user runs it, with ``env`` over a clean environment."""
    base = {key: value for key, value in os.environ.items() if not key.endswith("_URL")}
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["migrate"], "the orders database"),
        (["migrate", "--status"], "the orders database"),
        (["audit"], "the orders database"),
        (["serve", "orders"], "the orders database"),
        (["serve", "invoices"], "the invoices database"),
        (["serve", "audit"], "the orders database"),
        (["relay", "orders"], "the orders database"),
        (["worker", "invoices"], "the invoices database"),
        (["up"], "the orders database"),
        (["demo", "--attach"], "the orders front"),
        (["dlq", "list"], "the orders database"),
        (["dlq", "replay", "--all"], "the orders database"),
        (["dlq", "recover"], "the orders database"),
    ],
    ids=" ".join,
)
def test_every_command_that_cannot_reach_a_server_says_which_in_one_line_and_exits_3(
    args: list[str], what: str
) -> None:
    done = orderflow(args, **DOWN)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, done.stderr[-2000:]
    assert lines[-1].startswith(f"orderflow: cannot reach {what} (check "), lines
    assert "Traceback" not in done.stderr
    assert "pw@" not in done.stderr and "secret@" not in done.stderr


def test_a_value_orderflow_cannot_use_is_a_configuration_error_with_status_2() -> None:
    done = orderflow(["migrate"], **{**DOWN, "HTTP_THREADS": "many"})
    assert done.returncode == 2
    assert done.stderr.startswith("orderflow: configuration error: ")
    assert "HTTP_THREADS" in done.stderr
    assert "Traceback" not in done.stderr
