"""Numbered schema migrations of the invoices database (run by ``orderflow migrate``)."""

from pathlib import Path

DIRECTORY = Path(__file__).parent
