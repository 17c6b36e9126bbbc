"""Errors a service raises and the HTTP layer turns into problem+json responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid field: a JSON-pointer-like path and what is wrong with it."""

    field: str
    message: str


class DomainError(Exception):
    """Base class of the errors that are part of a service's contract."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The resource does not exist (HTTP 404)."""

    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The request is well formed but the resource's state forbids it (HTTP 409)."""

    status = 409
    title = "Conflict"


class Unprocessable(DomainError):
    """The request is well formed but its content is invalid (HTTP 422)."""

    status = 422
    title = "Unprocessable content"


class InvalidFields(Unprocessable):
    """One or more fields are invalid; each is named in ``errors``."""

    title = "Invalid fields"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        names = ", ".join(error.field for error in errors)
        super().__init__(f"invalid fields: {names}")
        self.errors = list(errors)


class FieldCollector:
    """Collects field errors so one response names every invalid field."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidFields(self.errors)
