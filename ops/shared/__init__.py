"""The shared kernel: building blocks both services use, owned by neither.

Nothing here imports ``orders``, ``invoices``, ``actors``, ``gateway`` or the wiring;
each service binds these building blocks to its own database. The kernel is split by
kind into four layers, each importing only those below it (import-linter's ``layers``
contract): ``web`` (what every front is built on), ``persistence`` (databases and the
saga's durable records), ``telemetry`` (metrics and trace context) and ``values``
(pure: errors, money, time, cursors, server lists).
"""
