"""The compose stack under test: its files, and reading services out of ops/compose.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"  # the compose file's directory: its relative paths start here
COMPOSE_FILE = OPS / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Every orderflow process of the stack, as ops/prometheus/prometheus.yml and
# ops/kong/kong.yaml name their hosts.
PROCESSES = {
    "migrate": ["migrate"],
    "orders": ["serve", "orders"],
    "invoices": ["serve", "invoices"],
    "gateway": ["serve", "gateway"],
    "audit": ["serve", "audit"],
    "orders-worker": ["worker", "orders"],
    "invoices-worker": ["worker", "invoices"],
    "orders-relay": ["relay", "orders"],
    "invoices-relay": ["relay", "invoices"],
}


def load_compose() -> dict[str, Any]:
    """ops/compose.yaml as written: anchors and merge keys resolved, ``${...}`` untouched."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def builds_this_repository(service: dict[str, Any]) -> bool:
    """True for a service whose image is built from the repository's Dockerfile."""
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context is not None and (OPS / context).resolve() == ROOT


def orderflow_processes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the image's ``orderflow`` entry point (not another program in it)."""
    return {
        name: service
        for name, service in config["services"].items()
        if builds_this_repository(service) and "entrypoint" not in service
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping, whichever of the two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """A service's dependencies → their conditions (the list form means started)."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in value.items()}


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``: a bind mount (source is a path) or a volume."""

    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/", "~"))

    @property
    def host_path(self) -> Path:
        """Where a bind mount's source is, relative paths resolving against ops/."""
        return (OPS / self.source).resolve()


def mounts(service: dict[str, Any]) -> list[Mount]:
    """Every entry of ``volumes``, short (``src:dst:ro``) or long syntax."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append(
                Mount(entry.get("source", ""), entry["target"], bool(entry.get("read_only")))
            )
            continue
        source, target, *options = entry.split(":")
        found.append(Mount(source, target, "ro" in ",".join(options).split(",")))
    return found


def mount_at(service: dict[str, Any], target: str) -> Mount | None:
    """The mount whose target is ``target`` or one of its parent directories."""
    candidates = [m for m in mounts(service) if target == m.target or _under(target, m.target)]
    return max(candidates, key=lambda m: len(m.target), default=None)


def host_path_of(service: dict[str, Any], target: str) -> Path | None:
    """The host path a container path maps to through a bind mount, or None."""
    mount = mount_at(service, target)
    if mount is None or not mount.is_bind:
        return None
    return mount.host_path / target.removeprefix(mount.target).lstrip("/")


def _under(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip("/") + "/")


def probe_url(service: dict[str, Any]) -> str:
    """The URL a service's healthcheck requests (the first http:// URL in its test)."""
    test = service.get("healthcheck", {}).get("test", [])
    text = " ".join(test) if isinstance(test, list) else test
    match = re.search(r"http://[^\s'\"]+", text)
    assert match, f"healthcheck {test!r} requests no http:// URL"
    return match.group(0)


def host_and_port(url: str) -> tuple[str, int]:
    """``http://orders:3333/x`` → ``("orders", 3333)`` (80 or 443 by scheme when absent)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def network_names(config: dict[str, Any]) -> dict[str, str]:
    """Every name a service answers to on the stack's network → the service: its own
    name and its network aliases."""
    names = {}
    for name, service in config["services"].items():
        names[name] = name
        networks = service.get("networks") or {}
        for network in networks.values() if isinstance(networks, dict) else []:
            for alias in (network or {}).get("aliases", []):
                names[alias] = name
    return names


def orderflow_variables() -> set[str]:
    """Every environment variable orderflow reads: those ``Settings.from_env`` looks up,
    and the ``OTEL_*`` ones ops/telemetry.py names (the OpenTelemetry SDK reads them)."""
    from ops.settings import Settings

    telemetry = (ROOT / "ops" / "telemetry.py").read_text(encoding="utf-8")
    return set(Settings.variables()) | set(re.findall(r"\bOTEL_[A-Z0-9_]*[A-Z0-9]\b", telemetry))
