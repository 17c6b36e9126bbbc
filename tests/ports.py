"""Ports for the servers a test starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nobody listens on, below the kernel's ephemeral range.

    A port from ``bind(0)`` is an ephemeral one: between this probe and the server's own
    bind, any outgoing connection on the machine (a worker's AMQP or PostgreSQL socket) may
    be given it as its local port, and the server then fails with "address in use". Ports
    below the range are never handed to outgoing connections; the ones this process gave
    out are not given twice.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


__all__ = ["free_port"]
