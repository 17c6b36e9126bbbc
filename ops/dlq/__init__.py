"""Dead-letter tooling for operators: ``orderflow dlq list``, ``replay`` and ``recover``.

A dead letter is a message Dramatiq gave up on, recorded in the owning
service's ``<service>_dead_letters`` table (``ops.shared.persistence.dead_letters``).

- ``ops.dlq.records``: finding records across both services' databases.
- ``ops.dlq.listing``: the table and the JSON of ``dlq list``.
- ``ops.dlq.replay``: re-enqueueing a record's message as a new message, marking it replayed.
- ``ops.dlq.recover``: recording the ``.XQ`` messages a worker could not record.
- ``ops.dlq.commands``: the ``dlq`` subcommands (argument parsing and wiring).

Only ``commands`` is imported by ``ops.cli`` while it builds its parser, so it
imports the others lazily (the models pull in the HTTP stack, which tracing
must patch first).
"""

from ops.dlq.commands import add_commands

__all__ = ["add_commands"]
