"""Saga steps as Dramatiq actors, the message catalogue, and worker middleware.

- ``actors.catalogue``: which event becomes which message on which queue.
- ``actors.ordering``: actors of the ``orders`` queue (call ``orders.service`` only).
- ``actors.invoicing``: actors of the ``invoices`` queue (call ``invoices.service`` only).
- ``actors.middleware``: a database connection per worker thread, dead-letter records.
- ``actors.broker``: builds the broker (RabbitMQ with confirms, or the stub) and its middleware.

Actors never import models or databases and never send messages themselves:
a step's next event goes to its service's outbox, and the relay publishes it.
Importing these modules declares nothing; ``declare(broker)`` does.
"""
