"""The audit's report: one result per invariant, for people (text) and machines (JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from ops.audit.constants import MAX_OFFENDERS


@dataclasses.dataclass(frozen=True)
class InvariantResult:
    """One invariant: holds or not, how many offenders, and the first of them."""

    code: str
    title: str
    ok: bool
    count: int
    offenders: list[str]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class AuditReport:
    """The audit's findings, one result per invariant, in order."""

    at: dt.datetime
    results: list[InvariantResult]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    def result(self, code: str) -> InvariantResult:
        return next(result for result in self.results if result.code == code)

    def failed(self) -> list[str]:
        return [result.code for result in self.results if not result.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds") + "Z",
            "ok": self.ok,
            "invariants": [result.to_dict() for result in self.results],
        }

    def render_text(self, shown: int = 3) -> str:
        """A table for people: code, title, PASS/FAIL, count, first offenders."""
        rows = [("code", "invariant", "result", "count", "first offenders")]
        for result in self.results:
            first = ", ".join(result.offenders[:shown])
            if result.count > shown:
                first += f", … (+{result.count - min(shown, len(result.offenders))})"
            elif not result.offenders and result.detail:
                first = result.detail
            rows.append(
                (
                    result.code,
                    result.title,
                    "PASS" if result.ok else "FAIL",
                    str(result.count),
                    first,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = []
        for index, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in [*widths, 15]))
        verdict = "all invariants hold" if self.ok else f"FAILED: {', '.join(self.failed())}"
        lines.append("")
        lines.append(f"audit at {self.at.isoformat(timespec='seconds')}Z: {verdict}")
        return "\n".join(lines)


def result_of(
    code: str, title: str, offenders: Iterable[object], detail: str = ""
) -> InvariantResult:
    offenders = [str(offender) for offender in offenders]
    return InvariantResult(
        code, title, not offenders, len(offenders), offenders[:MAX_OFFENDERS], detail
    )
