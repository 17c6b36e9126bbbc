"""Operations: settings, wiring, the ``orderflow`` command and the shared kernel.

- ``ops.shared`` is the shared kernel both services build on (outbox, dedupe,
  idempotency keys, money, problem+json). It imports no service.
- ``ops.settings`` is the only module that reads the environment.
- ``ops.bootstrap`` builds databases, brokers, apps and relays from settings.
- ``ops.cli``, ``ops.worker``, ``ops.standalone`` and ``ops.supervisor`` are the
  entry points operators run.
"""
