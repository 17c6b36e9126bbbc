"""The demo's system: start it as a child (or attach to it), run the scenario, stop it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.bootstrap import NoSigningKey
from ops.demo.client import Endpoints, call, describe, poll_until
from ops.demo.driver import run_scenario
from ops.demo.identity import Tokens, signing_keys
from ops.settings import Settings
from ops.unreachable import EXIT_UNREACHABLE

READY_TIMEOUT = 60.0  # seconds for a started system to answer GET /ready
STOP_TIMEOUT = 30.0  # seconds between SIGINT and SIGKILL
LOG_TAIL_LINES = 40


def busy_ports(settings: Settings) -> list[int]:
    """The ports of the fronts (services, gateway, audit part) on which something already
    accepts connections."""
    busy = []
    ports = (
        settings.orders_port,
        settings.invoices_port,
        settings.gateway_port,
        settings.audit_port,
    )
    for port in ports:
        with contextlib.suppress(OSError), socket.create_connection((settings.host, port), 1.0):
            busy.append(port)
    return busy


def child_command(settings: Settings) -> list[str]:
    """``orderflow up`` when a broker is configured, else ``orderflow standalone``."""
    command = "up" if settings.distributed else "standalone"
    return [sys.executable, "-m", "ops.cli", command]


def child_environment(settings: Settings, workdir: Path) -> dict[str, str]:
    """Our environment plus the settings; standalone gets ``workdir`` as a fresh data dir."""
    env = {**os.environ, **settings.to_env()}
    if not settings.distributed:
        env["ORDERFLOW_DATA_DIR"] = str(workdir)
    return env


def start_system(settings: Settings, workdir: Path) -> subprocess.Popen[bytes]:
    """Start the system in its own session, its output going to ``workdir/system.log``."""
    with (workdir / "system.log").open("wb") as log:
        return subprocess.Popen(
            child_command(settings),
            env=child_environment(settings, workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops the child
        )


def wait_ready(endpoints: Endpoints, child: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once GET /ready has answered 200 on both services; False if the child
    exits first or ``timeout`` seconds pass."""
    waiting = {endpoints.orders, endpoints.invoices}

    def ready_or_dead() -> bool:
        waiting.difference_update(
            {base for base in waiting if call("GET", f"{base}/ready", token=None).status == 200}
        )
        return not waiting or child.poll() is not None

    return poll_until(ready_or_dead, time.monotonic() + timeout) and not waiting


def stop_system(child: subprocess.Popen[bytes]) -> int:
    """Stop the child: SIGINT, up to ``STOP_TIMEOUT`` seconds, then SIGKILL to its whole
    process group. Returns its exit status."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        return child.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"the system did not stop within {STOP_TIMEOUT:.0f} s; killing it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        return child.wait()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the log file (empty if it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def tokens_for(settings: Settings) -> Tokens | None:
    """Tokens signed with the system's keys (see ``signing_keys``); None, after saying
    why, if there is no key to sign with."""
    try:
        return Tokens(signing_keys(settings))
    except NoSigningKey as exc:
        print(f"orderflow demo: {exc}", file=sys.stderr)
        return None


def attached(settings: Settings, endpoints: Endpoints, args: argparse.Namespace) -> int:
    """Run the scenario against a system that is already running, if both services are
    ready and a key to sign tokens with is configured (or in ``settings.data_dir``)."""
    for service, base in (("orders", endpoints.orders), ("invoices", endpoints.invoices)):
        if (reply := call("GET", f"{base}/ready", token=None)).status == 0:
            print(
                f"orderflow: cannot reach the {service} front (check ORDERFLOW_HOST and "
                f"{service.upper()}_PORT: {base}): {describe(reply)}; start the system "
                "first, or leave out --attach",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
        if reply.status != 200:
            print(
                f"orderflow demo: GET {base}/ready: {describe(reply)}; "
                "wait until the system is ready, or leave out --attach",
                file=sys.stderr,
            )
            return 1
    if (tokens := tokens_for(settings)) is None:
        return 1
    return run_scenario(endpoints, tokens, args, "attached", started=False)


def with_system(settings: Settings, endpoints: Endpoints, args: argparse.Namespace) -> int:
    """Start the system, run the scenario once it is ready, and always stop the system."""
    if busy := busy_ports(settings):
        print(
            f"orderflow demo: port(s) {', '.join(map(str, busy))} on {settings.host} are "
            "in use; stop what listens there, or use --attach to drive it",
            file=sys.stderr,
        )
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-demo-"))
    log = workdir / "system.log"
    child = start_system(settings, workdir)
    print(
        f"started `orderflow {child_command(settings)[-1]}` (pid {child.pid}); its log: {log}",
        flush=True,
    )
    try:
        if not wait_ready(endpoints, child, READY_TIMEOUT):
            state = "exited" if child.poll() is not None else "was not ready in time"
            print(
                f"orderflow demo: the system {state} (waited up to {READY_TIMEOUT:.0f} s); "
                f"end of {log}:\n{log_tail(log)}",
                file=sys.stderr,
            )
            return 1
        # the child created its development key (if it needed one) before it was ready
        keys_from = (
            settings if settings.distributed else dataclasses.replace(settings, data_dir=workdir)
        )
        if (tokens := tokens_for(keys_from)) is None:
            return 1
        mode = "distributed" if settings.distributed else "standalone"
        status = run_scenario(endpoints, tokens, args, mode, started=True)
    finally:
        print(f"system stopped (exit status {stop_system(child)})", flush=True)
    if status == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # kept, with its log, only on failure
    else:
        print(f"kept for inspection: {workdir}", flush=True)
    return status


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``orderflow demo``: 0 if every check passed, 1 if one failed or the system did not
    come up, 2 for unusable arguments, 130 if interrupted."""
    if args.orders < 1 or args.customers < 1 or args.timeout <= 0:
        print(
            "orderflow demo: --orders, --customers and --timeout must be positive", file=sys.stderr
        )
        return 2
    endpoints = Endpoints.of(settings)
    progress: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if getattr(args, "json", False):  # the summary alone on stdout; progress to stderr
        args.summary_stream = sys.stdout
        progress = contextlib.redirect_stdout(sys.stderr)
    try:
        with progress:
            if args.attach:
                return attached(settings, endpoints, args)
            return with_system(settings, endpoints, args)
    except KeyboardInterrupt:
        print("orderflow demo: interrupted", file=sys.stderr)
        return 130
