"""``orderflow demo``: drive a realistic scenario over HTTP, then check the saga's consistency.

Unless ``--attach`` is given, the demo starts the system as a child process
(``orderflow standalone`` on a fresh data directory, or ``orderflow up`` when a
broker URL is configured), waits until both services are ready, and stops the
child at the end whatever happens. Every request carries a bearer token signed
with the system's key (the configured one, else the development key the child
created in its data directory): each customer acts with its own customer token,
an operator token sets credit limits and reads across customers. The scenario
only touches customers named after a fresh run id, so it can run again against
the same databases:

1. about a quarter of the customers get a low credit limit (set by the
   operator), so some of their orders are cancelled as ``credit_rejected``;
2. 8 client threads place the orders, each as its customer; every 10th request
   is sent again with the same Idempotency-Key and must replay the first
   response, creating nothing;
3. once no order is pending, about a third of the confirmed orders are paid and
   a sixth cancelled by their customers (their invoices must end void);
   cancelling a paid order must answer 409 and paying the wrong amount 422;
4. the final state is read back over HTTP and checked, including authorization
   (no token 401, another customer's order 404, a customer setting a credit
   limit 403) and, when the gateway runs, its composed ``/me/orders`` screens.
   The summary says PASS, FAIL or SKIP per check; the exit status is 0 only if
   no check failed.

Only the standard library and the project's token minting are used: otherwise
the demo is a client like any other.
"""

from ops.demo.system import main

__all__ = ["main"]
