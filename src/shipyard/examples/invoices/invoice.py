"""Tiny invoicing helpers (the Shipyard demo repository)."""

from decimal import Decimal


def parse_amount(text):
    """Parse an amount such as "$1,234.50" into a Decimal."""
    return Decimal(text.strip().replace("$", ""))


def total(amounts):
    """Sum amounts given as text."""
    return sum((parse_amount(a) for a in amounts), Decimal("0"))
