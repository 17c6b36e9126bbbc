"""The kernel's telemetry: the metric catalogue and trace context.

Below persistence and web, above values only.
"""
