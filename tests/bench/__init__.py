"""Benchmark of distributed mode (``nox -s bench``); not a test suite."""
