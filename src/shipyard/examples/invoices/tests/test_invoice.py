from decimal import Decimal

import pytest

from invoice import parse_amount, total


def test_plain_amount():
    assert parse_amount("12.50") == Decimal("12.50")


def test_dollar_sign():
    assert parse_amount("$3") == Decimal("3")


def test_thousands_separator():
    assert parse_amount("$1,234.50") == Decimal("1234.50")


def test_empty_amount_is_a_clear_error():
    with pytest.raises(ValueError, match="empty amount"):
        parse_amount("  ")


def test_total():
    assert total(["1,000", "$2.50"]) == Decimal("1002.50")
