"""Invoices schema, version 5: the outbox keeps only the indexes its readers use.

The primary key and a partial index of unpublished rows (``invoices_outbox_unpublished``)
replace the indexes on ``event_id``, ``aggregate_id``, ``created_at`` and
``published_at``: an event now writes two index entries when recorded and one when
published, instead of five and five.
"""

from ops.shared.persistence.migrations import slim_outbox_indexes


def up(migrator, db):
    slim_outbox_indexes(db, "invoices")
