"""A loopback TCP proxy whose link the chaos tests control: pass, delay, blackhole or cut.

This kernel has no ``netem``; putting the proxy between the orderflow processes
and RabbitMQ gives the same faults on one machine:

- ``pass``: forward bytes both ways;
- ``delay``: hold every chunk for ``delay`` seconds before forwarding it;
- ``blackhole``: keep connections open but drop every byte (a silent network);
- ``cut``: reset every connection and refuse new ones.

Leaving ``blackhole`` resets the connections it spoiled (as a partition usually
ends with broken TCP sessions) unless told not to.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

# SO_LINGER on, timeout 0: close() sends a reset, as a broken network would
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class Proxy:
    """Listens on ``127.0.0.1:port`` and forwards to ``target``; see the module docstring."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "pass"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.links: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    # -- control ---------------------------------------------------------------

    def set_mode(self, mode: str, delay: float = 0.0, *, reset: bool = True) -> None:
        """Switch the link. ``cut`` resets every connection; leaving ``blackhole`` resets
        the spoiled ones too unless ``reset`` is false (then the clients must notice the
        silence and the garbled stream by themselves: heartbeats, timeouts)."""
        assert mode in ("pass", "delay", "blackhole", "cut"), mode
        with self.lock:
            previous, self.mode, self.delay = self.mode, mode, delay
        if mode == "cut" or (reset and previous == "blackhole" and mode != previous):
            self.reset_all()

    def reset_all(self) -> None:
        """Close every proxied connection with a reset."""
        with self.lock:
            links, self.links = self.links, set()
        for sock in links:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                sock.close()

    def close(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.reset_all()

    # -- forwarding ------------------------------------------------------------

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "cut":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink), daemon=True, name="proxy-pipe"
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                mode, delay = self.mode, self.delay
                if mode == "blackhole":
                    continue
                if mode == "delay" and delay:
                    time.sleep(delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
            with self.lock:
                self.links.discard(source)
                self.links.discard(sink)
