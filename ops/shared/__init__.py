"""The shared kernel: building blocks both services use, owned by neither.

Nothing here imports ``orders``, ``invoices``, ``actors`` or the wiring; each
service binds these building blocks to its own database.
"""
