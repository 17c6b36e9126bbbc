"""The bound on a publish's wait for its confirm (``actors.rabbitmq``), without a broker."""

from __future__ import annotations

import socket
import threading
import types

from actors.rabbitmq import OrderflowRabbitmqBroker, _Watch


def fake_connection(sock: socket.socket) -> object:
    return types.SimpleNamespace(
        _impl=types.SimpleNamespace(_transport=types.SimpleNamespace(_sock=sock))
    )


def test_a_publish_waiting_past_its_deadline_has_its_socket_shut_down() -> None:
    broker = OrderflowRabbitmqBroker(undecodable={}, url="amqp://guest:guest@127.0.0.1:1/")
    ours, peer = socket.socketpair()
    try:
        broker._watches[threading.get_ident()] = _Watch(
            deadline=100.0, connection=fake_connection(ours)
        )
        # Before the deadline nothing happens
        assert broker.abort_overdue(now=99.0) == 0
        peer.setblocking(False)
        # After it, the socket is shut down: the waiting side reads end-of-stream
        assert broker.abort_overdue(now=101.0) == 1
        assert ours.recv(1) == b""
        # and a watch is cut once only
        assert broker.abort_overdue(now=200.0) == 0
    finally:
        ours.close()
        peer.close()
