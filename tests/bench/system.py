"""The system under test: a clean broker vhost and databases, and ``orderflow up`` as a child.

``orderflow up`` runs in its own session (process group), so a Ctrl-C in the
terminal reaches only the benchmark, which then stops the system itself:
SIGINT to the supervisor (which stops its children with SIGTERM and a grace
period), a wait, and SIGKILL to the whole group if anything is still there.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg2
from psycopg2 import sql

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SUPERVISOR_GRACE = 20.0  # ops.supervisor.GRACE_SECONDS: the supervisor's own wait for children


class BenchSetupError(RuntimeError):
    """The benchmark could not prepare or start the system."""


def pg_dsn(database: str) -> str:
    """A libpq DSN for ``database`` on the local PostgreSQL as user postgres."""
    return f"host=127.0.0.1 port=5432 user=postgres dbname={database}"


def pg_url(database: str) -> str:
    """The database URL orderflow expects for ``database`` on the local PostgreSQL."""
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


def _rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` with ``args``; returns its output, raises if it fails."""
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchSetupError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def reset_vhost(vhost: str) -> None:
    """Delete ``vhost`` if it exists, create it afresh and give guest full permissions."""
    existing = _rabbitmqctl("-q", "list_vhosts", "name").split()
    if vhost in existing:
        _rabbitmqctl("delete_vhost", vhost)
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def recreate_databases(names: list[str]) -> None:
    """Drop (forcing out any sessions) and create each database in ``names``."""
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def server_versions(vhost: str) -> dict[str, str]:
    """The PostgreSQL and RabbitMQ versions, for the report."""
    versions = {}
    connection = psycopg2.connect(PG_ADMIN_DSN)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            versions["postgresql"] = str(cursor.fetchone()[0])
    finally:
        connection.close()
    try:
        versions["rabbitmq"] = _rabbitmqctl("-q", "version").strip()
    except (BenchSetupError, OSError):
        versions["rabbitmq"] = "unknown"
    return versions


def port_in_use(host: str, port: int) -> bool:
    """True when something already accepts connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def start_system(root: Path, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``python -m ops.cli up`` in its own process group, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _ready(host: str, port: int) -> bool:
    """True when ``GET /ready`` on ``host:port`` answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/ready")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_ready(
    process: subprocess.Popen[bytes], host: str, ports: list[int], timeout: float
) -> float:
    """Poll ``GET /ready`` on every port until all answer 200; returns the seconds waited.

    Raises :class:`BenchSetupError` if ``process`` exits or ``timeout`` passes first.
    """
    started = time.monotonic()
    waiting = list(ports)
    while waiting:
        if process.poll() is not None:
            raise BenchSetupError(f"`orderflow up` exited with {process.returncode} before ready")
        waiting = [port for port in waiting if not _ready(host, port)]
        if not waiting:
            break
        if time.monotonic() - started > timeout:
            raise BenchSetupError(f"ports {waiting} not ready after {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass(frozen=True)
class StopResult:
    """How the system stopped."""

    exit_code: int | None
    seconds: float
    killed: bool  # the group had to be killed (supervisor hung, or processes were left over)


def stop_system(
    process: subprocess.Popen[bytes], grace: float = SUPERVISOR_GRACE + 25
) -> StopResult:
    """SIGINT the supervisor, wait up to ``grace`` seconds, then SIGKILL its process group."""
    started = time.monotonic()
    killed = False
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            killed = True
    if _group_alive(process.pid):  # the supervisor hung, or left children behind
        killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()
    return StopResult(process.returncode, time.monotonic() - started, killed)


def _group_alive(pgid: int) -> bool:
    """True when some process of the group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


RESTART_LINE = re.compile(r" exited with status \S+ after .*restart \d+ in ")


def log_summary(path: Path) -> dict[str, int]:
    """Tracebacks, restarts, warnings and errors in the system log."""
    counts = Counter[str]()
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if line.startswith("Traceback (most recent call last)"):
                counts["tracebacks"] += 1
            if RESTART_LINE.search(line):  # ops.supervisor's line for each exit
                counts["restarts"] += 1
            for level in ("WARNING", "ERROR", "CRITICAL"):
                if level in line[:160]:
                    counts[level.lower()] += 1
    return {key: counts[key] for key in ("tracebacks", "restarts", "warning", "error", "critical")}
