"""Schemathesis against each HTTP front running as its own process on the real RabbitMQ
and PostgreSQL: no 5xx, and every answer conforms to the service's OpenAPI description
(status code, content type, headers, body schema).

The descriptions are read from the packages (``<service>/openapi.json``), not fetched
from the services, and the runs are bounded: a fixed seed and a fixed number of
examples per operation, in all of Schemathesis' phases (examples, coverage, fuzzing,
stateful).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from .cluster import Cluster

SEED = 20261125
MAX_EXAMPLES = 25
RUN_TIMEOUT = 120  # seconds; a run takes a few seconds on a 2-core machine
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CUSTOMER = "c1"  # the customer the descriptions' examples name


@pytest.fixture(scope="module")
def system(servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One running distributed system for every run of this module, with a few of
    CUSTOMER's orders confirmed (so lists, invoices and accounts are not empty)."""
    cluster = Cluster(tmp_path_factory.mktemp("schemathesis"), servers)
    cluster.create()
    try:
        cluster.start()
        placed = [cluster.place_order(CUSTOMER, price=f"{n}.50", quantity=n) for n in (1, 2, 3)]
        assert all(status == 201 for status, _ in placed), placed
        for _, order in placed:
            cluster.wait_for_status(order["id"], "confirmed")
        yield cluster
    finally:
        cluster.destroy()


def description_of(service: str, workdir: Path) -> Path:
    """The service's packaged description, as a file Schemathesis can read."""
    target = workdir / f"{service}-openapi.json"
    target.write_text(resources.files(service).joinpath("openapi.json").read_text("utf-8"))
    return target


def schemathesis_run(system: Cluster, service: str, role: str) -> subprocess.CompletedProcess:
    subject = CUSTOMER if role == "customer" else "ops"
    workdir = system.workdir
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(description_of(service, workdir)),
        "--url",
        f"http://127.0.0.1:{system.ports[service]}",
        "--header",
        f"Authorization: Bearer {system.token(subject, role)}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--generation-with-security-parameters",
        "false",
        "--suppress-health-check",
        "too_slow",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    if system.request("GET", service, "/openapi.json")[0] != 200:
        # Not served (yet): the route's wiring is checked by the unit tests.
        argv += ["--exclude-path", "/openapi.json"]
    return subprocess.run(
        argv, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


@pytest.mark.parametrize(
    ("service", "role"),
    [
        ("orders", "customer"),
        ("orders", "operator"),
        ("invoices", "customer"),
        ("invoices", "operator"),
        ("gateway", "customer"),
    ],
)
def test_each_service_answers_every_generated_request_as_its_description_says(
    system: Cluster, service: str, role: str
) -> None:
    run = schemathesis_run(system, service, role)
    if run.returncode != 0:
        pytest.fail(
            f"schemathesis found problems in {service} (as {role}):\n"
            f"{run.stdout[-20_000:]}\n{run.stderr[-4_000:]}\n"
            f"----- logs -----\n{system.logs()}",
            pytrace=False,
        )
    assert "passed" in run.stdout


def _cursor(*values: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


# Requests the descriptions answer with 422, found while writing them (the services once
# answered 500 or accepted them); kept as guards.
REFUSED_REQUESTS = [
    pytest.param(
        "orders",
        "POST",
        "/orders",
        {
            "currency": "EUR",
            "lines": [{"sku": "A", "quantity": 10000, "unit_price": "9999999999999"}],
        },
        id="an order total beyond BIGINT",
    ),
    pytest.param(
        "orders",
        "POST",
        "/orders",
        {"currency": "EUR", "lines": [{"sku": "A", "quantity": 2, "unit_price": "9999999999999"}]},
        id="an order total beyond the largest amount",
    ),
    pytest.param(
        "orders",
        "GET",
        f"/orders?cursor={_cursor('2026-01-01T00:00:00', 'not-a-uuid')}",
        None,
        id="a forged orders cursor",
    ),
    pytest.param(
        "invoices",
        "GET",
        f"/invoices?cursor={_cursor('2026-01-01T00:00:00', 'not-a-uuid')}",
        None,
        id="a forged invoices cursor",
    ),
]


@pytest.mark.parametrize(("service", "method", "path", "body"), REFUSED_REQUESTS)
def test_requests_the_descriptions_refuse_are_refused_with_422(
    system: Cluster, service: str, method: str, path: str, body: object
) -> None:
    status, problem, headers = system.request(
        method, service, path, body, token=system.token(CUSTOMER)
    )
    assert (status, headers.get("Content-Type")) == (422, "application/problem+json"), problem
