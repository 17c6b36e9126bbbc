"""Kong's task: the kong image, DB-less, with ``ops/kong/kong.yaml`` rendered first.

The file holds decK templates (``${{ env "DECK_..." }}``) where the jwt keys go, and
Kong cannot resolve them itself (docs/kong.md). So the task has two containers, as in
ops/compose.yaml: a short-lived one from the application image runs
``ops/kong/render.py`` on the file, with the DECK_* values ECS injects out of Secrets
Manager, into a volume only this task sees; Kong starts once it exited 0. Both the
template and the renderer travel as plain environment values (neither holds a secret),
since the image carries neither file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from ops.infra.containers import KONG_PROXY_PORT, KONG_STATUS_PORT, log_configuration

KONG_DIRECTORY = Path(__file__).resolve().parents[1] / "kong"
KONG_FILE = KONG_DIRECTORY / "kong.yaml"
RENDERER = KONG_DIRECTORY / "render.py"
CONFIG_VOLUME = "kong-config"
CONFIG_DIRECTORY = "/kong"
DECK_VARIABLES = (
    "DECK_ORDERFLOW_JWT_SECRET",
    "DECK_ORDERFLOW_JWT_PUBLIC_KEY",
    "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET",
)
# The shell only moves text: the template to a file, then render.py (exits non-zero,
# naming the variable, when a DECK_* value is missing, and Kong never starts).
RENDER = (
    'printf %s "$KONG_TEMPLATE" > "$KONG_CONFIG_DIRECTORY/kong.template.yaml"'
    ' && exec python3 -c "$KONG_RENDERER" "$KONG_CONFIG_DIRECTORY/kong.template.yaml"'
    ' --output "$KONG_CONFIG_DIRECTORY/kong.yaml"'
)


def kong_containers(
    image: pulumi.Input[str],
    *,
    kong_image: str,
    secrets: Mapping[str, pulumi.Input[str]],
    log: Mapping[str, Any],
    cpu: int,
    vpc_cidr: str,
) -> list[dict[str, Any]]:
    """The render container (from the application ``image``) and Kong (``kong_image``)."""
    render = {
        "name": "kong-render",
        "image": image,
        "essential": False,
        "entryPoint": ["sh", "-c"],
        "command": [RENDER],
        # Fargate creates task volumes owned by root: writing the file needs root, in a
        # container that only runs this script.
        "user": "0",
        "environment": [
            {"name": "KONG_TEMPLATE", "value": KONG_FILE.read_text(encoding="utf-8")},
            {"name": "KONG_RENDERER", "value": RENDERER.read_text(encoding="utf-8")},
            {"name": "KONG_CONFIG_DIRECTORY", "value": CONFIG_DIRECTORY},
        ],
        "secrets": [{"name": name, "valueFrom": secrets[name]} for name in DECK_VARIABLES],
        "mountPoints": [{"sourceVolume": CONFIG_VOLUME, "containerPath": CONFIG_DIRECTORY}],
        "logConfiguration": log_configuration(log, "kong-render"),
    }
    kong = {
        "name": "kong",
        "image": kong_image,
        "essential": True,
        "dependsOn": [{"containerName": "kong-render", "condition": "SUCCESS"}],
        "environment": [
            {"name": name, "value": value}
            for name, value in kong_environment(cpu, vpc_cidr).items()
        ],
        "secrets": [],
        "mountPoints": [
            {
                "sourceVolume": CONFIG_VOLUME,
                "containerPath": CONFIG_DIRECTORY,
                "readOnly": True,
            }
        ],
        "portMappings": [
            {"name": "kong-proxy", "containerPort": KONG_PROXY_PORT, "protocol": "tcp"},
            {"name": "kong-status", "containerPort": KONG_STATUS_PORT, "protocol": "tcp"},
        ],
        "healthCheck": {
            "command": ["CMD", "kong", "health"],
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 30,
        },
        "logConfiguration": log_configuration(log, "kong"),
    }
    return [render, kong]


def kong_environment(cpu: int, vpc_cidr: str) -> dict[str, str]:
    """Kong's settings: DB-less from the rendered file, no Admin API, logs to stdout."""
    return {
        "KONG_DATABASE": "off",
        "KONG_DECLARATIVE_CONFIG": f"{CONFIG_DIRECTORY}/kong.yaml",
        "KONG_PROXY_LISTEN": f"0.0.0.0:{KONG_PROXY_PORT}",
        "KONG_STATUS_LISTEN": f"0.0.0.0:{KONG_STATUS_PORT}",
        # DB-less: the file is the configuration; an Admin API could change nothing durable.
        "KONG_ADMIN_LISTEN": "off",
        "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
        "KONG_PROXY_ERROR_LOG": "/dev/stderr",
        # Behind the load balancer (the only peer the firewall lets in, from an address in
        # the VPC): the client's address is the last one it appended to X-Forwarded-For.
        "KONG_REAL_IP_HEADER": "X-Forwarded-For",
        "KONG_REAL_IP_RECURSIVE": "on",
        "KONG_TRUSTED_IPS": vpc_cidr,
        # nginx's "auto" counts the host's CPUs, not the task's share.
        "KONG_NGINX_WORKER_PROCESSES": str(max(1, cpu // 1024)),
    }
