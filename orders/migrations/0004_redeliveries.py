"""Orders schema, version 4: redelivery counts (``orders_redeliveries``)."""

from ops.shared.persistence.migrations import redeliveries_table_v1


def up(migrator, db):
    db.create_tables([redeliveries_table_v1(db, "orders")])
