"""The kernel's persistence: databases, compiled statements, migrations, the saga's
durable records (outbox, dedupe keys, steps, dead letters, redeliveries, idempotency
keys), group commit and the relay.
"""
