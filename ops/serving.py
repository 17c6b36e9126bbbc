"""Running the parts: an HTTP front on waitress, a relay loop, and clean stops on signals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import falcon
from waitress import create_server, wasyncore

from ops.settings import Settings

log = logging.getLogger(__name__)

# waitress's own cap (ours is the 64 KiB problem+json 413 in the app); it bounds
# what waitress buffers for a chunked body before the app can refuse it.
WAITRESS_MAX_BODY = 1024 * 1024


def http_server(app: falcon.App, settings: Settings, port: int) -> Any:
    """A waitress server for ``app``, bound but not yet serving."""
    return create_server(
        app,
        host=settings.host,
        port=port,
        threads=settings.http_threads,
        max_request_body_size=WAITRESS_MAX_BODY,
        ident="orderflow",
        clear_untrusted_proxy_headers=True,
        channel_timeout=60,
    )


def run_http_server(server: Any, stop: threading.Event) -> None:
    """Serve until ``stop`` is set, then finish in-flight requests (up to 5 s) and close.

    The loop runs in short rounds so the sockets are closed from the thread that polls
    them (closing them from another thread races waitress's ``select``).
    """
    use_poll = server.adj.asyncore_use_poll
    while not stop.is_set():
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=use_poll, count=1)
    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(server._map)


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM (install from the main thread)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def start_thread(name: str, target: Callable[..., object], *args: object) -> threading.Thread:
    """Start a daemon thread named ``name``."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread
