"""Counting the requests a fuzz run sent: per operation, with a histogram of status codes.

``fuzz_hooks`` appends one JSON line per request sent; :func:`read_tally` folds them
into ``operation → Counter(status → requests)`` and :func:`render` prints the runs as a
table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Tally = dict[str, Counter[int]]  # operation label ("GET /orders") → status → requests
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def read_tally(path: Path) -> Tally:
    """The requests recorded in ``path`` (none if the file was never written)."""
    tally: Tally = {}
    if not path.exists():
        return tally
    for line in path.read_text("utf-8").splitlines():
        request = json.loads(line)
        tally.setdefault(request["operation"], Counter())[int(request["status"])] += 1
    return tally


def operations_with_inputs(description: Mapping[str, Any]) -> set[str]:
    """Operations that take parameters or a body: the ones Schemathesis can vary (an
    operation without inputs, like ``GET /health``, has one request to generate)."""
    labels = set()
    for path, item in description["paths"].items():
        for method, operation in item.items():
            if method in METHODS and (
                item.get("parameters") or operation.get("parameters") or "requestBody" in operation
            ):
                labels.add(f"{method.upper()} {path}")
    return labels


def histogram(statuses: Counter[int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))


def render(runs: Mapping[str, Tally]) -> str:
    """One row per run and operation: requests sent and their status codes."""
    rows = [("run", "operation", "requests", "status codes")]
    for run, tally in runs.items():
        for operation in sorted(tally, key=lambda label: label.split(" ", 1)[::-1]):
            statuses = tally[operation]
            rows.append((run, operation, str(sum(statuses.values())), histogram(statuses)))
    total = sum(sum(statuses.values()) for tally in runs.values() for statuses in tally.values())
    rows.append(("total", "", str(total), ""))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = []
    for index, (run, operation, requests, statuses) in enumerate(rows):
        cells = [run.ljust(widths[0]), operation.ljust(widths[1]), requests.rjust(widths[2])]
        lines.append("  ".join([*cells, statuses]).rstrip())
        if index in (0, len(rows) - 2):
            lines.append("  ".join("-" * width for width in [*widths, 12]))
    return "\n".join(lines)
