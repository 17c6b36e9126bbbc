"""Orders schema, version 2: the saga timeline of each order (``order_steps``)."""

import peewee


def up(migrator, db):
    class OrderStep(db.Model):
        seq = peewee.BigAutoField()
        order_id = peewee.UUIDField(index=True)
        at = peewee.DateTimeField()
        event = peewee.CharField(max_length=64)
        outcome = peewee.CharField(max_length=32)
        detail = peewee.CharField(max_length=255)
        dedupe_key = peewee.CharField(max_length=64, null=True)
        trace_id = peewee.CharField(max_length=32, null=True)

        class Meta:
            table_name = "order_steps"

    db.create_tables([OrderStep])
