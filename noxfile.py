"""Sessions for developers and CI: ``demo``, ``tests``, ``lint``, ``bench``, ``soak``, ``chaos``,
``cluster``, ``fuzz``, ``infra``."""

from __future__ import annotations

import os

import nox

nox.options.download_python = "never"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# the versions the tests ran with (see the file's header)
CONSTRAINTS = "constraints.txt"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests, then integration tests on the real RabbitMQ and PostgreSQL.

    Integration tests skip with a reason when a server is unreachable, and fail
    instead when CI=true.
    """
    session.install("-c", CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (check and format) and the import-linter contracts."""
    session.install("-c", CONSTRAINTS, "-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Start the system (standalone unless BROKER_URL and database URLs are set), drive a
    realistic scenario over HTTP, print a summary and check consistency."""
    session.install("-c", CONSTRAINTS, ".")
    session.run("orderflow", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """orderflow against the naive reference chain, side by side, on the local RabbitMQ
    and PostgreSQL, with a py-spy profile of each run (not a test; see docs/performance.md)."""
    session.install("-c", CONSTRAINTS, "-e", ".[bench]")
    session.run("python", "-m", "tests.bench.run", *session.posargs)


@nox.session(python=PYTHON)
def bench_gateway(session: nox.Session) -> None:
    """The gateway's GET /me/orders/{id} on the real services: requests per second, p99 and
    CPU per request over 3 rounds (its own vhost, databases and ports; not a test; see
    docs/gateway.md)."""
    session.install("-c", CONSTRAINTS, "-e", ".")
    session.run("python", "-m", "tests.bench.gateway", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Worker memory over a 10-minute open-loop soak on the local RabbitMQ and PostgreSQL
    (its own vhost, databases and ports, so it can run beside ``bench``); fails when a
    worker process grew more than 10 % after the warm-up (not a test)."""
    session.install("-c", CONSTRAINTS, "-e", ".")
    session.run("python", "-m", "tests.bench.soak", *session.posargs)


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """F1-F9 at full scale on the local RabbitMQ and PostgreSQL (which F3 and F4 restart):
    each fault under load, then drain and audit; the table lands in results/. Run
    some only with ``CHAOS_ONLY=F1,F5``."""
    session.install("-c", CONSTRAINTS, "-e", ".[test]")
    session.run(
        "pytest",
        "-s",
        "tests/integration/test_chaos.py",
        *session.posargs,
        env={"CHAOS_SCALE": "full"},
    )


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """C1-C5 at full scale: orderflow on a three-node RabbitMQ cluster and a PostgreSQL
    primary with a streaming standby, which the tests start from the machine's packages
    (their own directories and ports; the local servers are not touched); nodes and the
    primary die under load, then drain and audit; the table lands in results/. Run some
    only with ``CLUSTER_ONLY=C1,C4``."""
    session.install("-c", CONSTRAINTS, "-e", ".[test]")
    session.run(
        "pytest",
        "-s",
        "tests/cluster/test_cluster.py",
        *session.posargs,
        env={
            "CLUSTER_SCALE": "full",
            "CLUSTER_ONLY": os.environ.get("CLUSTER_ONLY", "C1,C2,C3,C4,C5"),
        },
    )


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Schemathesis' long run against a distributed cluster on the local RabbitMQ and
    PostgreSQL: FUZZ_EXAMPLES (default 2000) examples per operation, then the saga
    drains, the audit holds and nothing is half-written (about 20 minutes on 2 cores)."""
    session.install("-c", CONSTRAINTS, "-e", ".[test]")
    session.run(
        "pytest",
        "tests/integration/test_schemathesis.py",
        *session.posargs,
        env={"FUZZ_EXAMPLES": os.environ.get("FUZZ_EXAMPLES", "2000")},
    )


@nox.session(python=PYTHON)
def infra(session: nox.Session) -> None:
    """The Pulumi program's tests (ops/infra, tests/infra): the dev and prod stack files
    run against Pulumi's mocks, with no cloud, Pulumi CLI or credentials.

    Its own pins (ops/infra/constraints.txt), not the application's: pulumi needs
    protobuf<7, the application's constraints pin 7. The tests read ops.settings and
    ops.cli's parser, whose one third-party import (opentelemetry-api) pulumi brings, so
    the project goes in without its dependencies. ORDERFLOW_INFRA_TESTS=required makes a
    missing pulumi an error here rather than a skip.
    """
    session.install("-c", "ops/infra/constraints.txt", "-r", "ops/infra/requirements.txt", "pytest")
    session.install("--no-deps", "-e", ".")
    session.run(
        "pytest", "tests/infra", *session.posargs, env={"ORDERFLOW_INFRA_TESTS": "required"}
    )
