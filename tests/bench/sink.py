"""A stand-in for the trace collector: accepts OTLP/HTTP exports and throws them away.

    python -m tests.bench.sink --port 4318

With tracing on, every process of orderflow builds its spans and exports them
in batches over OTLP/HTTP, as in production; this sink answers each export
with 200 and an empty ``ExportTraceServiceResponse`` (an empty protobuf body)
without decoding it, so the collector's own cost, which production pays on
another machine, stays out of the figures. It counts requests and bytes and
prints them when stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = [0, 0]  # requests, bytes
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.lock:
            self.received[0] += 1
            self.received[1] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def start(port: int, log: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
    """Run the sink on ``127.0.0.1:port`` as a child in its own session, output to ``log``;
    raises :class:`RuntimeError` if the port is taken."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"127.0.0.1:{port} (the OTLP sink's port) is in use")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.sink", "--port", str(port)],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(sink: subprocess.Popen[bytes]) -> None:
    """Stop the sink: SIGTERM (which it handles even where SIGINT is ignored, as in a
    background job of a non-interactive shell), then kill it if it has not exited."""
    sink.send_signal(signal.SIGTERM)
    try:
        sink.wait(10)
    except subprocess.TimeoutExpired:
        sink.kill()
        sink.wait()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; prints what it received."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.sink")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    requests, size = _Handler.received
    print(f"otlp sink: {requests} exports, {size} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
