"""The orders service: owns the orders database (orders, its outbox, dedupe keys,
idempotency keys and dead letters) and the ``/orders`` HTTP API.

Public surface for actors and wiring: ``orders.service`` (functions) and
``orders.domain`` (statuses and rules). ``orders.models`` and ``orders.api`` are
the service's own; the import contracts keep actors out of them.
"""
