"""The consistency audit: does the whole system still keep its promises?

``orderflow audit`` reads both databases (and, when a broker is configured, the
depth of the dead-letter queues) and checks seven invariants across the two
services. Cross-database joins are impossible, so each side's needed columns are
read once, set-based, into compact tuples and compared in Python (fine for
100k orders).

Reads are ordered so that a live system does not produce false alarms: the
invoice counter, then invoices, then orders. An invoice is always committed
before its order is confirmed, and an order before its invoice is issued, so an
invoice seen always has its order, and an order confirmed before the invoice
snapshot always has its invoice in it.
"""

from ops.audit.constants import MAX_OFFENDERS
from ops.audit.report import AuditReport, InvariantResult
from ops.audit.run import dead_letter_depths, main, queue_depths, run_audit

__all__ = [
    "MAX_OFFENDERS",
    "AuditReport",
    "InvariantResult",
    "dead_letter_depths",
    "main",
    "queue_depths",
    "run_audit",
]
