"""Money: decimal strings on the wire, integer minor units in the databases.

Every amount has at most two decimal places; floats never enter the system.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MINOR_PER_MAJOR = 100
MAX_MINOR = 10**15 - 1  # 9999999999999.99: far beyond any order, well inside a BIGINT


class AmountError(ValueError):
    """The value is not a valid amount; the message says why, for the client."""


def parse_amount(value: object, *, positive: bool = True) -> int:
    """Parse a decimal string like ``"12.34"`` into minor units (``1234``).

    Raises :class:`AmountError` for non-strings (JSON numbers included), NaN,
    Infinity, more than two decimals, and non-positive values when ``positive``.
    """
    if not isinstance(value, str):
        if str(value) in {"NaN", "Infinity", "-Infinity"}:
            raise AmountError("must be a finite number (NaN and Infinity are not amounts)")
        raise AmountError('must be a decimal string such as "12.34"')
    text = value.strip()
    if not text or text != value or "\x00" in text:
        raise AmountError('must be a decimal string such as "12.34"')
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise AmountError('must be a decimal string such as "12.34"') from None
    if not amount.is_finite():
        raise AmountError("must be a finite number (NaN and Infinity are not amounts)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise AmountError("must have at most 2 decimal places")
    minor = int(amount * MINOR_PER_MAJOR)
    if positive and minor <= 0:
        raise AmountError("must be greater than 0")
    if minor < 0:
        raise AmountError("must not be negative")
    if minor > MAX_MINOR:
        raise AmountError("is too large")
    return minor


def format_minor(minor: int) -> str:
    """Format minor units as a decimal string with two places: ``1234`` → ``"12.34"``."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), MINOR_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"


def to_minor(amount: Decimal) -> int:
    """Convert a Decimal with at most two places to minor units."""
    return int((amount * MINOR_PER_MAJOR).to_integral_exact())
