"""The gateway: the Backend-for-Frontend in front of the orders and invoices services.

It owns no data and no database. It verifies the caller's Bearer token, then
talks to the two services over HTTP only (it imports neither ``orders`` nor
``invoices``), forwarding the token, ``X-Correlation-ID`` and the W3C trace
headers, and composes their answers into the shapes a frontend needs:

- ``GET /me/orders``: a page of the caller's orders, each with its invoice
  summary found by ONE batched invoices call;
- ``GET /me/orders/{id}``: the order, its full invoice and its saga timeline,
  fetched in parallel;
- ``POST /graphql``: the same data (and placing / cancelling orders) as a
  schema-first GraphQL API;
- ``GET /health`` and ``GET /ready`` (both services answer ``/health``).

When the invoices service is down, slow or failing, answers still succeed with
``invoice: null`` and a ``partial_failures`` marker; when the orders service
fails, the answer is 503. Modules: ``clients`` (one HTTP call with a deadline),
``compose`` (the compositions REST and GraphQL share), ``resources`` (Falcon),
``graphql`` + ``schema.graphql`` (ariadne), ``app`` (``create_app``).
"""
