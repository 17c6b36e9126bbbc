"""Command line of the naive chain; run from the repository root.

    python -m tests.bench.naive migrate
    python -m tests.bench.naive serve --host 127.0.0.1 --port 8090 --threads 8
    python -m tests.bench.naive up --host 127.0.0.1 --port 8090 --threads 8

``up`` creates the tables, then runs the front (``serve``) and one Dramatiq
worker process (``dramatiq tests.bench.naive.actors -p 1 -t THREADS``) as
children in its own process group, until SIGINT or SIGTERM, or until a child
exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from tests.bench.naive import load_config, schema

log = logging.getLogger("naive")

GRACE_SECONDS = 20.0  # how long the children get to stop after SIGTERM


def migrate() -> None:
    """Create the tables of both databases (and the invoice sequence) unless they exist."""
    schema.connect(load_config())
    schema.migrate()
    schema.orders_db.close()
    schema.invoices_db.close()


def serve(host: str, port: int, threads: int) -> None:
    """Serve the front on waitress until interrupted."""
    import waitress

    from tests.bench.naive.app import create_app  # importing it wires broker and databases

    waitress.serve(create_app(), host=host, port=port, threads=threads)


def child_commands(host: str, port: int, threads: int) -> list[list[str]]:
    """The command lines of the front and of the worker."""
    front = [sys.executable, "-m", "tests.bench.naive", "serve"]
    front += ["--host", host, "--port", str(port), "--threads", str(threads)]
    worker = [sys.executable, "-m", "dramatiq", "tests.bench.naive.actors"]
    worker += ["--processes", "1", "--threads", str(threads)]
    return [front, worker]


def supervise(
    children: Sequence[subprocess.Popen[bytes]],
    stopping: threading.Event,
    grace: float = GRACE_SECONDS,
) -> int:
    """Wait until ``stopping`` is set or a child exits, then stop every child.

    Returns 0 when asked to stop, else the exit status of the child that exited:
    its code, 128 + the signal number if a signal ended it, 1 if it exited with 0
    (a child must not end on its own).
    """
    code = 0
    while not stopping.wait(0.2):
        exited = [child for child in children if child.poll() is not None]
        if exited:
            returncode = exited[0].returncode
            log.error("%s exited with %s", exited[0].args, returncode)
            code = 128 - returncode if returncode < 0 else returncode or 1
            break
    stop_children(children, grace)
    return code


def stop_children(children: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every live child, wait up to ``grace`` seconds in all, then kill the rest."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", child.args, grace)
            child.kill()
            child.wait()


def up(host: str, port: int, threads: int) -> int:
    """Migrate, then run the front and the worker until a signal or a child's exit."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    migrate()
    if stopping.is_set():
        return 0
    children = [subprocess.Popen(command) for command in child_commands(host, port, threads)]
    return supervise(children, stopping)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.naive")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create the tables (idempotent)")
    for name, text in (("serve", "run the HTTP front"), ("up", "migrate, run front and worker")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8090)
        command.add_argument("--threads", type=int, default=8, help="per process (default 8)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "migrate":
        migrate()
        return 0
    if args.command == "serve":
        serve(args.host, args.port, args.threads)
        return 0
    return up(args.host, args.port, args.threads)


if __name__ == "__main__":
    sys.exit(main())
