"""The invoices service: owns the invoices database (billing accounts, invoices, the
gapless invoice counter, cancelled-order tombstones, its outbox, dedupe keys,
idempotency keys and dead letters) and the ``/invoices`` and ``/accounts`` HTTP API.

Public surface for actors and wiring: ``invoices.service`` and ``invoices.domain``.
"""
