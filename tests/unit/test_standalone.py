"""Standalone mode as a process: it starts with no configuration and survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.ports import free_port

ORDER = {
    "currency": "EUR",
    "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
}


class Standalone:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {"orders": free_port(), "invoices": free_port()}
        self.env = {
            **os.environ,
            "ORDERS_PORT": str(self.ports["orders"]),
            "INVOICES_PORT": str(self.ports["invoices"]),
        }
        for name in (
            "BROKER_URL",
            "ORDERS_DATABASE_URL",
            "INVOICES_DATABASE_URL",
            "ORDERFLOW_JWT_SECRET",
            "ORDERFLOW_JWT_PUBLIC_KEY",
        ):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.token: str | None = None

    def start(self) -> None:
        log = (self.workdir / "standalone.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "standalone"],
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.poll(lambda: self.get("orders", "/ready")[0] == 200, "standalone to be ready")
        # Standalone created a development key under ./var/; `orderflow token` uses it too.
        minted = subprocess.run(
            [sys.executable, "-m", "ops.cli", "token", "--customer", "solo"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        self.token = minted.stdout.strip()

    def get(self, service: str, path: str) -> tuple[int, dict | None]:
        return self.call("GET", service, path)

    def call(
        self, method: str, service: str, path: str, body: dict | None = None
    ) -> tuple[int, dict | None]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[service]}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except (urllib.error.URLError, ConnectionError):
            return 0, None

    def poll(self, condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process is None or self.process.poll() is None, (
                self.workdir / "standalone.log"
            ).read_text()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(30)


def test_standalone_needs_no_configuration_and_keeps_its_data_under_var(tmp_path) -> None:
    system = Standalone(tmp_path)
    system.start()
    try:
        status, order = system.call("POST", "orders", "/orders", ORDER)
        assert status == 201
        system.poll(
            lambda: system.get("orders", f"/orders/{order['id']}")[1]["status"] == "confirmed",
            "the order to be confirmed",
        )
    finally:
        assert system.stop() == 0
    assert sorted(p.name for p in (tmp_path / "var").glob("*.sqlite3")) == [
        "invoices.sqlite3",
        "orders.sqlite3",
    ]
    assert (tmp_path / "var" / "dev-jwt-secret").stat().st_mode & 0o777 == 0o600


def test_after_kill_9_a_restart_finishes_every_saga_exactly_once(tmp_path) -> None:
    # Given orders in flight when the process is killed
    system = Standalone(tmp_path)
    system.start()
    ids = [system.call("POST", "orders", "/orders", ORDER)[1]["id"] for _ in range(40)]
    system.stop(signal.SIGKILL)
    # When standalone starts again
    system.start()
    try:
        # Then every order is confirmed, each with exactly one invoice
        def settled() -> bool:
            page = system.get("orders", "/orders?status=confirmed&limit=200")
            return len(page[1]["items"]) == len(ids)

        system.poll(settled, "every order to be confirmed")
        invoices = system.get("invoices", "/invoices?limit=200")[1]["items"]
        assert sorted(invoice["order_id"] for invoice in invoices) == sorted(ids)
        assert sorted(invoice["number"] for invoice in invoices) == [
            f"INV-{n:06d}" for n in range(1, len(ids) + 1)
        ]
    finally:
        system.stop()
