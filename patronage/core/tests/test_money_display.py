"""Amounts as people read them: the currency's code and its decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patronage.core.money import format_money, format_total, money_text, shared_currency


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("154.5500"), "EUR", "EUR 154.55"),
        (Decimal("154.5550"), "eur", "EUR 154.56"),
        (Decimal("1234567.8"), "USD", "USD 1,234,567.80"),
        (Decimal("1200.5"), "JPY", "JPY 1,201"),
        (Decimal("3.1415"), "KWD", "KWD 3.142"),
        (Decimal("-0.001"), "EUR", "EUR 0.00"),
        (Decimal("-5.005"), "EUR", "EUR -5.01"),
        (Decimal("7"), None, "7.00"),
        (None, "EUR", ""),
    ],
)
def test_an_amount_shows_with_its_currency_and_its_decimals(
    amount: Decimal | None, currency: str | None, shown: str
) -> None:
    assert format_money(amount, currency) == shown


def test_plain_digits_for_files_never_negative_zero() -> None:
    assert money_text(Decimal("154.5500"), "EUR") == "154.55"
    assert money_text(Decimal("-0.0010"), "EUR") == "0.00"
    assert money_text(Decimal("1200.5"), "JPY") == "1201"


def test_a_total_over_shops_says_when_it_mixes_currencies() -> None:
    assert shared_currency(["EUR", "eur"]) == "EUR"
    assert shared_currency(["EUR", "USD"]) is None and shared_currency([]) is None
    assert format_total(Decimal("154.55"), ["EUR", "EUR"]) == "EUR 154.55"
    assert format_total(Decimal("154.55"), ["USD", "EUR"]) == "154.55 (EUR + USD shops)"
    assert format_total(Decimal("154.55"), []) == "154.55"
