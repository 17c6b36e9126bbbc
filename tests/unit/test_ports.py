"""The ports tests give their servers."""

from __future__ import annotations

import socket

from tests.ports import _ephemeral_range, free_port


def test_a_free_port_lies_below_the_range_outgoing_connections_are_given() -> None:
    # Given the kernel's ephemeral range
    low, _ = _ephemeral_range()
    # When ports are handed out
    ports = [free_port() for _ in range(20)]
    # Then none of them can be taken by an outgoing connection meanwhile
    assert all(1024 <= port < low for port in ports)


def test_a_port_is_never_handed_out_twice_and_can_be_bound() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))
