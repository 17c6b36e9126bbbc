"""``orderflow up``: every part of the distributed system as a child process.

Starts both HTTP fronts, one Dramatiq worker pool per queue and one relay per
outbox, prints where each listens, restarts a child that dies (after a short
pause), and on Ctrl-C or SIGTERM stops them all: SIGTERM first, SIGKILL for
any still running after the grace period. RabbitMQ and PostgreSQL are not
started here.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops import bootstrap
from ops.serving import stop_event_on_signals
from ops.settings import Settings

log = logging.getLogger(__name__)

GRACE_SECONDS = 20.0
RESTART_PAUSE = 1.0
METRICS_DIR = "metrics"  # under the data directory: a multiprocess directory per worker pool


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    where: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)
    env: dict[str, str] = field(default_factory=dict)  # on top of the common environment


def plan(settings: Settings) -> list[Child]:
    """The processes of the distributed system, in start order."""
    python = sys.executable
    children = []
    for service in bootstrap.FRONTS:
        children.append(
            Child(
                f"{service}-api",
                [python, "-m", "ops.cli", "serve", service],
                f"http://{settings.host}:{settings.port(service)} (metrics at /metrics)",
            )
        )
    for service in bootstrap.SERVICES:
        children.append(
            Child(
                f"{service}-worker",
                [
                    python,
                    "-m",
                    "dramatiq",
                    f"ops.worker:{service}",
                    "--queues",
                    service,
                    "--processes",
                    str(settings.worker_processes),
                    "--threads",
                    str(settings.worker_threads),
                ],
                f"queue {service!r} "
                f"({settings.worker_processes} processes x {settings.worker_threads} threads), "
                f"metrics on :{settings.metrics_port(f'{service}-worker')}",
                env=worker_metrics_env(settings, service),
            )
        )
    for service in bootstrap.SERVICES:
        children.append(
            Child(
                f"{service}-relay",
                [python, "-m", "ops.cli", "relay", service],
                f"{service} outbox -> broker, "
                f"metrics on :{settings.metrics_port(f'{service}-relay')}",
            )
        )
    return children


def worker_metrics_env(settings: Settings, service: str) -> dict[str, str]:
    """The environment a worker pool needs for Dramatiq's Prometheus exporter: where it
    listens, and the multiprocess directory its processes and the exporter share."""
    directory = (settings.data_dir / METRICS_DIR / f"{service}-worker").resolve()
    return {
        "dramatiq_prom_host": settings.host,
        "dramatiq_prom_port": str(settings.metrics_port(f"{service}-worker")),
        "dramatiq_prom_db": str(directory),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }


def fresh_metrics_directory(env: dict[str, str]) -> None:
    """Empty a worker pool's multiprocess directory: files left by the processes of an
    earlier run would still be counted."""
    directory = Path(env["dramatiq_prom_db"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def run(settings: Settings) -> int:
    """Start everything, supervise until a signal, then stop everything."""
    if not settings.distributed:
        raise SystemExit(
            "`orderflow up` needs BROKER_URL, ORDERS_DATABASE_URL and "
            "INVOICES_DATABASE_URL; without them use `orderflow standalone`"
        )
    bootstrap.token_keys(settings, create_dev_key=True)
    applied = bootstrap.migrate(settings)
    for service, names in applied.items():
        if names:
            log.info("%s: applied migrations %s", service, ", ".join(names))
    stop = stop_event_on_signals()
    env = {**os.environ, **settings.to_env()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # only worker pools share one (their own)
    children = plan(settings)
    for child in children:
        if "dramatiq_prom_db" in child.env:
            fresh_metrics_directory(child.env)
    for child in children:
        _start(child, env)
        print(
            f"  {child.name:<16} pid {child.process.pid:<7} {child.where}",  # type: ignore[union-attr]
            flush=True,
        )
    print("orderflow up: all parts started; Ctrl-C stops them", flush=True)
    while not stop.wait(0.5):
        for child in children:
            code = child.process.poll() if child.process else None
            if code is not None and not stop.is_set():
                log.warning("%s exited with %s; restarting", child.name, code)
                child.restarts += 1
                time.sleep(RESTART_PAUSE)
                _start(child, env)
    _stop_all(children)
    return 0


def _start(child: Child, env: dict[str, str]) -> None:
    child.process = subprocess.Popen(
        child.argv, env={**env, **child.env, "ORDERFLOW_PROCESS": child.name}
    )
    child.started_at = time.monotonic()


def _stop_all(children: list[Child]) -> None:
    running = [c for c in children if c.process and c.process.poll() is None]
    for child in running:
        child.process.terminate()  # type: ignore[union-attr]
    deadline = time.monotonic() + GRACE_SECONDS
    for child in running:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", child.name, GRACE_SECONDS)
            child.process.kill()  # type: ignore[union-attr]
            child.process.wait()  # type: ignore[union-attr]
    print("orderflow up: stopped", flush=True)
