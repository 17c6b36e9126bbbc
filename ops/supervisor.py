"""``orderflow up``: every part of the distributed system as a child process.

Starts both HTTP fronts, one Dramatiq worker pool per queue and one relay per
outbox, prints where each listens, restarts a child that dies, and on Ctrl-C or
SIGTERM stops them all: SIGTERM first, SIGKILL for any still running after the grace
period. RabbitMQ and PostgreSQL are not started here.

A child that dies is restarted after :class:`RestartPolicy`'s pause: one second, then
twice as long after each death that follows its start within ``quick`` seconds, up to
``cap``; a child that lived longer starts again from one second. Each death is logged
with its exit status and the pause. A child that died quickly ``failing_after`` times
in a row is reported as failing, in the log and in ``supervisor.json`` under the data
directory, which the fronts' ``/ready`` reads (:func:`failing_parts`) to answer 503
naming the part of their service that keeps dying.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops import bootstrap
from ops.services import FRONTS, NAMES
from ops.serving import stop_event_on_signals
from ops.settings import Settings

log = logging.getLogger(__name__)

GRACE_SECONDS = 20.0
METRICS_DIR = "metrics"  # under the data directory: a multiprocess directory per worker pool
STATUS_FILE = "supervisor.json"  # under the data directory, while `orderflow up` runs


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child that died, and when to call it failing."""

    first: float = 1.0  # seconds before restarting a child that lived
    cap: float = 60.0  # the longest pause
    quick: float = 10.0  # a death within this many seconds of the start is quick
    failing_after: int = 3  # quick deaths in a row that make a child failing

    def pause(self, quick_deaths: int) -> float:
        """Seconds to wait before the next start, after ``quick_deaths`` in a row."""
        return min(self.cap, self.first * 2 ** max(quick_deaths - 1, 0))


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
    quick_deaths: int = 0  # deaths in a row within RestartPolicy.quick of the start
    last_exit: int | None = None
    restart_at: float | None = None  # when a dead child is due to start again

    def died(self, code: int, now: float, policy: RestartPolicy) -> float:
        """Note that the child exited with ``code`` at ``now``; returns the pause before
        its restart (which is then due at ``restart_at``)."""
        self.last_exit = code
        self.quick_deaths = self.quick_deaths + 1 if now - self.started_at < policy.quick else 0
        pause = policy.pause(self.quick_deaths)
        self.restart_at = now + pause
        return pause

    def failing(self, policy: RestartPolicy) -> bool:
        """Whether it died quickly ``policy.failing_after`` times in a row (so far)."""
        return self.quick_deaths >= policy.failing_after


def plan(settings: Settings) -> list[Child]:
    """The processes of the distributed system, in start order."""
    python = sys.executable
    children = []
    for service in FRONTS:
        children.append(
            Child(
                f"{service}-api",
                [python, "-m", "ops.cli", "serve", service],
                f"http://{settings.host}:{settings.port(service)} (metrics at /metrics)",
            )
        )
    for service in NAMES:
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
    for service in NAMES:
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


def run(settings: Settings, policy: RestartPolicy | None = None) -> int:
    """Start everything, supervise until a signal, then stop everything."""
    policy = policy or RestartPolicy()
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
    status = settings.data_dir / STATUS_FILE
    write_status(status, children, policy)
    try:
        while not stop.wait(0.2):
            if supervise(children, env, policy, time.monotonic()):
                write_status(status, children, policy)
    finally:
        _stop_all(children)
        status.unlink(missing_ok=True)
    return 0


def supervise(
    children: list[Child], env: dict[str, str], policy: RestartPolicy, now: float
) -> bool:
    """One look at every child: note a death (and log it), start a child whose pause is
    over, clear the quick exits of one that has now run ``policy.quick`` seconds.
    Returns whether anything changed. Never waits: one child's pause does not
    hold up another's restart, or a stop."""
    changed = False
    for child in children:
        if child.restart_at is None:
            code = child.process.poll() if child.process else None
            if code is None:
                if child.quick_deaths and now - child.started_at >= policy.quick:
                    log.info("%s has run %.0fs since its restart", child.name, policy.quick)
                    child.quick_deaths = 0  # it recovered: no longer failing
                    changed = True
                continue
            pause = child.died(code, now, policy)
            lived = now - child.started_at
            if child.failing(policy):
                log.error(
                    "%s exited with status %s after %.1fs: failing (%d quick exits in a row); "
                    "restart %d in %.0fs",
                    child.name,
                    code,
                    lived,
                    child.quick_deaths,
                    child.restarts + 1,
                    pause,
                )
            else:
                log.warning(
                    "%s exited with status %s after %.1fs; restart %d in %.0fs",
                    child.name,
                    code,
                    lived,
                    child.restarts + 1,
                    pause,
                )
            changed = True
        elif now >= child.restart_at:
            child.restarts += 1
            child.restart_at = None
            _start(child, env)
            changed = True
    return changed


def write_status(path: Path, children: list[Child], policy: RestartPolicy) -> None:
    """Write what the fronts' ``/ready`` reads: each child's restarts, last exit status and
    whether it is failing, with this supervisor's pid (replaced atomically)."""
    document = {
        "pid": os.getpid(),
        "children": {
            child.name: {
                "restarts": child.restarts,
                "last_exit": child.last_exit,
                "quick_exits_in_a_row": child.quick_deaths,
                "failing": child.failing(policy),
            }
            for child in children
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    partial.replace(path)


def failing_parts(data_dir: Path, names: list[str]) -> list[str]:
    """Of ``names``, the children a running ``orderflow up`` reports as failing, each as
    a phrase; none when no supervisor runs (no status file, or its pid is gone)."""
    try:
        document = json.loads((data_dir / STATUS_FILE).read_text(encoding="utf-8"))
        os.kill(int(document["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return []
    children = document.get("children", {})
    return [
        f"{name} keeps exiting ({children[name]['quick_exits_in_a_row']} quick exits in a "
        f"row, last status {children[name]['last_exit']})"
        for name in names
        if children.get(name, {}).get("failing")
    ]


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
