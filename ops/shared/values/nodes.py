"""Where the servers are when there is more than one: a RabbitMQ cluster's nodes in
``BROKER_URL``, and PostgreSQL's multi-host URLs.

``BROKER_URL`` holds one ``amqp://`` or ``amqps://`` URL, or several separated by
commas, semicolons or white space: the nodes of one cluster, tried in order at each
(re)connection, so a process finds a surviving node when one is down. A PostgreSQL URL
may name several hosts the way libpq does (``postgresql://h1:5432,h2:5432/db?
target_session_attrs=read-write``); libpq then tries them in order at each connection
and, with ``target_session_attrs=read-write``, takes the one that accepts writes, so
after a standby's promotion a new connection finds the new primary.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s,;]+")
_PASSWORD = re.compile(r"(//[^:/@\s,;]*:)[^@/\s]*@")
BROKER_SCHEMES = ("amqp://", "amqps://")


def broker_nodes(url: str) -> list[str]:
    """The node URLs in ``url``, in order; ``ValueError`` naming what is wrong otherwise."""
    nodes = [node for node in _SEPARATORS.split(url.strip()) if node]
    if not nodes:
        raise ValueError("no broker URL")
    for node in nodes:
        if not node.startswith(BROKER_SCHEMES):
            raise ValueError(f"{redacted(node)!r} is not an amqp:// or amqps:// URL")
    return nodes


def redacted(url: str) -> str:
    """``url`` (one URL or several) with each password replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


def multi_host(url: str) -> bool:
    """True when a PostgreSQL URL names several hosts (``h1:5432,h2:5432``)."""
    authority = url.split("//", 1)[-1].split("/", 1)[0]
    return "," in authority.rpartition("@")[2]
