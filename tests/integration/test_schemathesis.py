"""Schemathesis against each HTTP front running as its own process on the real RabbitMQ
and PostgreSQL: no 5xx, every answer conforms to the service's OpenAPI description
(status code, content type, headers, body schema), and every error is
``application/problem+json`` with ``type``, ``title`` and ``status`` (``fuzz_hooks``).
After the runs the saga drains, the consistency audit holds on the cluster's
databases and nothing is half-written in either (``half_written``).

The descriptions are read from the packages (``<service>/openapi.json``), not fetched
from the services, and the runs are bounded and deterministic: a fixed seed and
``FUZZ_EXAMPLES`` examples per operation (25 by default, a few seconds a run; 2000 for
the long run, at least 2,000 requests per operation that takes input), in all of
Schemathesis' phases (examples, coverage, fuzzing, stateful). The requests actually
sent are counted per operation and printed as a table at the end of the module.

Schemathesis generates bodies from the descriptions; what a JSON decoder may choke on
is generated here with Hypothesis, ``FUZZ_EXAMPLES`` bodies per endpoint that reads
JSON: nesting 65 to 20,000 levels deep, integers of 4,301 to 30,000 digits, a key twice,
strings up to 60 KB, arbitrary bytes (invalid UTF-8), odd content types. Each must be
a 4xx, and the decoder's refusals exactly 400 (415 for the content types).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import hypothesis
import psycopg2
import pytest
from hypothesis import strategies as st

from .cluster import Cluster
from .drain import wait_until_drained
from .fuzz_tally import Tally, operations_with_inputs, read_tally, render
from .half_written import half_written

SEED = 20261125
DEFAULT_EXAMPLES = 25  # CI-sized
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
# seconds per run: a few at the default size on a 2-core machine, minutes for 2000
RUN_TIMEOUT = 120 + EXAMPLES // 2
DRAIN_TIMEOUT = 300  # seconds for the saga to settle every order the runs placed
HOOKS = Path(__file__).with_name("fuzz_hooks.py")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "problem_json_errors",  # fuzz_hooks
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


@pytest.fixture(scope="module")
def tallies(request: pytest.FixtureRequest) -> Iterator[dict[str, Tally]]:
    """The requests each run sent, per operation; printed as a table after the module."""
    runs: dict[str, Tally] = {}
    yield runs
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if runs and capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n\nschemathesis: requests sent, {EXAMPLES} examples, seed {SEED}")
            print(render(runs))


def description_of(service: str, workdir: Path) -> Path:
    """The service's packaged description, as a file Schemathesis can read."""
    target = workdir / f"{service}-openapi.json"
    target.write_text(resources.files(service).joinpath("openapi.json").read_text("utf-8"))
    return target


def schemathesis_run(
    system: Cluster, service: str, role: str, tally: Path
) -> subprocess.CompletedProcess:
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
        str(EXAMPLES),
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
    tally.unlink(missing_ok=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "FUZZ_TALLY": str(tally)}
    return subprocess.run(
        argv,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
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
    system: Cluster, tallies: dict[str, Tally], service: str, role: str
) -> None:
    tally_file = system.workdir / f"tally-{service}-{role}.jsonl"
    run = schemathesis_run(system, service, role, tally_file)
    tally = tallies[f"{service} as {role}"] = read_tally(tally_file)
    if run.returncode != 0:
        pytest.fail(
            f"schemathesis found problems in {service} (as {role}):\n"
            f"{run.stdout[-20_000:]}\n{run.stderr[-4_000:]}\n"
            f"----- logs -----\n{system.logs()}",
            pytrace=False,
        )
    assert "passed" in run.stdout
    # every operation that takes input got at least EXAMPLES generated requests
    description = json.loads(resources.files(service).joinpath("openapi.json").read_text("utf-8"))
    short = {
        operation: sum(tally.get(operation, {}).values())
        for operation in operations_with_inputs(description)
        if sum(tally.get(operation, {}).values()) < EXAMPLES
    }
    assert short == {}, f"fewer than {EXAMPLES} requests sent: {short}"


def test_after_the_runs_the_saga_drains_the_audit_holds_and_nothing_is_half_written(
    system: Cluster,
) -> None:
    # Given every order the runs placed settled
    wait_until_drained(system, DRAIN_TIMEOUT)
    # When the audit reads both databases (and the dead-letter queues)
    audit = subprocess.run(
        [sys.executable, "-m", "ops.cli", "audit", "--json"],
        env=system.env,
        cwd=system.workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then every invariant holds
    assert audit.returncode == 0, f"{audit.stdout}\n{audit.stderr}\n{system.logs()}"
    assert json.loads(audit.stdout)["ok"] is True
    # And nothing is half-written in either database
    assert half_written(system.query) == {}


def test_the_half_written_check_names_a_record_without_the_rest_of_its_write(
    system: Cluster,
) -> None:
    # Given, inside transactions rolled back afterwards, an order whose OrderPlaced event
    # is gone and an invoice marked paid without its payment
    connections = {
        service: psycopg2.connect(system.database_url(service)) for service in system.databases
    }
    try:
        orders, invoices = connections["orders"].cursor(), connections["invoices"].cursor()
        orders.execute("SELECT id::text FROM orders ORDER BY created_at LIMIT 1")
        (order_id,) = orders.fetchone()
        orders.execute(
            "DELETE FROM orders_outbox WHERE aggregate_id = %s AND event_type = 'OrderPlaced'",
            (order_id,),
        )
        invoices.execute(
            "UPDATE invoices SET status = 'paid', paid_at = NULL WHERE order_id = %s "
            "RETURNING number",
            (order_id,),
        )
        (number,) = invoices.fetchone()

        def query(service: str, sql: str) -> list[tuple]:
            cursor = connections[service].cursor()
            cursor.execute(sql)
            return cursor.fetchall()

        # When the check runs, then it names exactly those two
        findings = half_written(query)
    finally:
        for connection in connections.values():
            connection.rollback()
            connection.close()
    assert findings == {
        "orders: order without exactly one OrderPlaced event": [order_id],
        "invoices: paid invoice without paid_at or InvoicePaid event": [number],
    }


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


# -- hostile bodies: what Schemathesis does not generate ---------------------------------

JSON = "application/json"


def _deep(levels: int) -> bytes:
    return b'{"lines":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


ODD_TYPES = [
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "application/json-patch+json",
]
# (body, content type, the status every JSON endpoint must answer; None: any 4xx)
HOSTILE_BODIES = st.one_of(
    (st.sampled_from([65, 999, 1_000, 1_001, 5_000, 20_000]) | st.integers(65, 20_000)).map(
        lambda levels: (_deep(levels), JSON, 400)
    ),
    (st.sampled_from([4_301, 30_000]) | st.integers(4_301, 30_000)).map(
        lambda digits: (b'{"amount": ' + b"9" * digits + b"}", JSON, 400)
    ),
    st.sampled_from(["currency", "lines", "amount", "query", "credit_limit"]).map(
        lambda key: (f'{{"{key}": 1, "{key}": 2}}'.encode(), JSON, 400)
    ),
    st.integers(1_000, 60_000).map(
        lambda size: (b'{"currency": "' + b"E" * size + b'"}', JSON, None)
    ),
    st.binary(min_size=1, max_size=200).map(
        lambda raw: (b'{"currency": "' + raw + b'"}', JSON, None)
    ),
    st.tuples(st.binary(max_size=200), st.sampled_from(ODD_TYPES), st.just(415)),
)
# (service, method, path, role) of every endpoint that reads a JSON body
JSON_ENDPOINTS = [
    ("orders", "POST", "/orders", "customer"),
    ("invoices", "POST", "/invoices/00000000-0000-4000-8000-000000000000/payments", "customer"),
    ("invoices", "PUT", "/accounts/fuzz-hostile", "operator"),
    ("gateway", "POST", "/graphql", "customer"),
]


def send_raw(
    system: Cluster, service: str, method: str, path: str, token: str, body: bytes, kind: str
) -> tuple[int, bytes, str]:
    """One request with a raw body; returns status, body and content type."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{system.ports[service]}{path}",
        data=body,
        method=method,
        headers={"Content-Type": kind, "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


@pytest.mark.parametrize(
    ("service", "method", "path", "role"), JSON_ENDPOINTS, ids=[e[2] for e in JSON_ENDPOINTS]
)
def test_generated_hostile_bodies_are_client_errors_on_every_json_endpoint(
    system: Cluster, service: str, method: str, path: str, role: str
) -> None:
    token = system.token("operator", "operator") if role == "operator" else system.token(CUSTOMER)

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
    @hypothesis.given(HOSTILE_BODIES)
    def check(hostile: tuple[bytes, str, int | None]) -> None:
        body, kind, expected = hostile
        status, answer, answered_as = send_raw(system, service, method, path, token, body, kind)
        assert 400 <= status < 500, (status, answer[:300])
        if expected is not None:
            assert (status, answered_as) == (expected, "application/problem+json"), answer[:300]
        if answered_as != "application/problem+json":  # GraphQL's own error document
            assert service == "gateway" and json.loads(answer)["errors"], answer[:300]
        assert b"traceback" not in answer.lower()

    check()
