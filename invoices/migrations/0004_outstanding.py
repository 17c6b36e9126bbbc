"""Invoices schema, version 4: each billing account keeps its outstanding total.

``billing_accounts.outstanding_minor`` is the sum of the customer's issued, unpaid
invoices, kept in the transaction that issues, pays or voids one, so the credit check
reads one row instead of summing the customer's history. Existing accounts start from
that sum.
"""

import peewee


def up(migrator, db):
    migrator.migrate(
        migrator.add_column(
            "billing_accounts",
            "outstanding_minor",
            # a server default too, so that an insert naming the older columns still works
            peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")]),
        ),
    )
    db.execute_sql(
        "UPDATE billing_accounts SET outstanding_minor = COALESCE(("
        "SELECT SUM(total_minor) FROM invoices"
        " WHERE invoices.customer_id = billing_accounts.customer_id"
        " AND invoices.status = 'issued'), 0)"
    )
