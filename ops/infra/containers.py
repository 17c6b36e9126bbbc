"""The processes and their container definitions (plain data, no resources).

Each application process runs the one image with one ``orderflow`` subcommand;
ports come from :class:`ops.settings.Settings`' defaults, so the tasks listen
where the application expects to, and the Service Connect names are the hosts
in ``ops/kong/kong.yaml``'s upstream URLs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pulumi

from ops.settings import Settings

DEFAULTS = Settings()
KONG_PROXY_PORT = 8000  # docs/kong.md: Kong proxies on 8000
KONG_STATUS_PORT = 8100  # Kong's status listener: /status/ready for the load balancer
BROKER_PORT = 5671  # Amazon MQ speaks AMQP over TLS only
DATABASE_PORT = 5432


@dataclasses.dataclass(frozen=True)
class Process:
    """One long-running application process."""

    name: str  # as `orderflow up` names it: logs, traces, the ECS service
    argv: tuple[str, ...]  # arguments of the `orderflow` command
    databases: tuple[str, ...] = ()  # the services whose databases it opens
    port: int | None = None  # HTTP port other tasks reach
    alias: str | None = None  # the name other tasks reach it by (Service Connect)
    broker: bool = False  # needs BROKER_URL
    tokens: bool = False  # verifies JWTs: needs ORDERFLOW_JWT_SECRET
    routed: bool = True  # Kong routes to it (the audit part is reached by the gateway only)


PROCESSES: Mapping[str, Process] = {
    process.name: process
    for process in (
        Process(
            "orders-api",
            ("serve", "orders"),
            databases=("orders",),
            port=DEFAULTS.orders_port,
            alias="orders",
            broker=True,  # /ready checks the broker
            tokens=True,
        ),
        Process(
            "invoices-api",
            ("serve", "invoices"),
            databases=("invoices",),
            port=DEFAULTS.invoices_port,
            alias="invoices",
            broker=True,
            tokens=True,
        ),
        Process(
            "gateway-api",
            ("serve", "gateway"),
            port=DEFAULTS.gateway_port,
            alias="gateway",
            tokens=True,
        ),
        Process(
            "audit-api",
            ("serve", "audit"),
            databases=("orders", "invoices"),  # read-only transactions
            port=DEFAULTS.audit_port,
            alias="audit",
            broker=True,  # queue depths
            tokens=True,
            routed=False,
        ),
        Process("orders-worker", ("worker", "orders"), databases=("orders",), broker=True),
        Process("invoices-worker", ("worker", "invoices"), databases=("invoices",), broker=True),
        Process("orders-relay", ("relay", "orders"), databases=("orders",), broker=True),
        Process("invoices-relay", ("relay", "invoices"), databases=("invoices",), broker=True),
    )
}
MIGRATE = Process("migrate", ("migrate",))
SERVICES = ("orders", "invoices")


def secret_names(process: Process) -> list[str]:
    """The environment variables ``process`` receives from Secrets Manager.

    ``Settings.from_env`` refuses a ``BROKER_URL`` without both database URLs, so a
    process with a broker is handed both although it opens only its own database; its
    security group reaches no other (``firewall``).
    """
    names = []
    if process.broker or process is MIGRATE:
        names += [f"{service.upper()}_DATABASE_URL" for service in SERVICES]
    if process.broker:
        names.append("BROKER_URL")
    if process.tokens:
        names.append("ORDERFLOW_JWT_SECRET")
    return names


def environment(process: Process, queue_type: str) -> dict[str, str]:
    """The plain (non-secret) environment of ``process``."""
    env = {
        "ORDERFLOW_PROCESS": process.name,
        "ORDERFLOW_HOST": "0.0.0.0",  # noqa: S104 - other tasks connect to this one's address
        "LOG_FORMAT": "json",  # CloudWatch Logs Insights reads JSON lines field by field
        "LOG_LEVEL": "INFO",
        "RABBITMQ_QUEUE_TYPE": queue_type,
        # No collector runs in this stack; point OTEL_EXPORTER_OTLP_ENDPOINT at one to export.
        "OTEL_TRACES_EXPORTER": "none",
    }
    if process.name == "gateway-api":
        for service in (*SERVICES, "audit"):
            upstream = PROCESSES[f"{service}-api"]
            env[f"{service.upper()}_URL"] = f"http://{upstream.alias}:{upstream.port}"
    return dict(sorted(env.items()))


def app_container(
    process: Process,
    image: pulumi.Input[str],
    secrets: Mapping[str, pulumi.Input[str]],
    log: Mapping[str, Any],
    queue_type: str,
) -> dict[str, Any]:
    """The container definition of ``process``: ``orderflow <argv>`` from ``image``,
    its secrets by ARN (``secrets`` maps variable names to Secrets Manager ARNs)."""
    container: dict[str, Any] = {
        "name": process.name,
        "image": image,
        "essential": True,
        # Pinned here rather than trusting the image's ENTRYPOINT: the command is the contract.
        "entryPoint": ["orderflow"],
        "command": list(process.argv),
        "environment": [
            {"name": k, "value": v} for k, v in environment(process, queue_type).items()
        ],
        "secrets": [{"name": name, "valueFrom": secrets[name]} for name in secret_names(process)],
        "logConfiguration": log_configuration(log, process.name),
        # An init process reaps children (the worker's Dramatiq processes) and forwards SIGTERM.
        "linuxParameters": {"initProcessEnabled": True},
        "portMappings": [],
    }
    if process.port is not None:
        container["portMappings"] = [
            {
                "name": process.alias,
                "containerPort": process.port,
                "protocol": "tcp",
                "appProtocol": "http",
            }
        ]
        container["healthCheck"] = _liveness(process.port)
    return container


def log_configuration(log: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """awslogs to ``log['group']`` in ``log['region']``, streams named after ``prefix``."""
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log["group"],
            "awslogs-region": log["region"],
            "awslogs-stream-prefix": prefix,
        },
    }


def _liveness(port: int) -> dict[str, Any]:
    # /health, not /ready: a broker or database outage must not make ECS kill every front.
    probe = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=2)"
    )
    return {
        "command": ["CMD", "python3", "-c", probe],
        "interval": 15,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 30,
    }
