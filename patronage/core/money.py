"""Money is Decimal end to end; floats only exist at the JSON edge."""

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.0001")


def to_money(value: object) -> Decimal:
    """Exact decimal for a JSON number or string; raises InvalidOperation/TypeError on garbage."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, float):
        value = repr(value)
    amount = Decimal(value)  # type: ignore[arg-type]
    if not amount.is_finite():
        raise InvalidOperation("amount must be finite")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def as_json_number(amount: Decimal) -> float | int:
    normalized = amount.normalize()
    return int(normalized) if normalized == normalized.to_integral_value() else float(normalized)


# --- display ------------------------------------------------------------------------------------------
# ISO 4217 currencies whose minor unit is not hundredths; every other code shows two decimals.
MINOR_UNITS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def currency_decimals(currency: str | None) -> int:
    """How many decimals amounts of this ISO 4217 currency show (2 when unknown or not given)."""
    return MINOR_UNITS.get((currency or "").upper(), 2)


def round_money(amount: Decimal, currency: str | None) -> Decimal:
    """The amount rounded (half up) to the currency's minor unit: 154.5500 EUR -> 154.55."""
    return amount.quantize(Decimal(1).scaleb(-currency_decimals(currency)), rounding=ROUND_HALF_UP)


def money_text(amount: Decimal, currency: str | None) -> str:
    """The amount rounded to the currency's minor unit, plain digits (CSV): ``154.55``, never ``-0.00``."""
    rounded = round_money(amount, currency)
    return str(rounded if rounded else abs(rounded))


def format_money(amount: Decimal | int | None, currency: str | None) -> str:
    """An amount as people read it: ``EUR 1,154.55``; ``JPY 1,200``; without a currency ``1,154.55``.

    Thousands are separated by commas and the currency code comes first, as in invoices and bank
    statements; ``None`` is an empty string. ``currency`` None means "not known" (e.g. shops of several
    currencies): the caller says so next to the amount.
    """
    if amount is None:
        return ""
    rounded = round_money(Decimal(amount), currency)
    text = f"{rounded if rounded else abs(rounded):,}"  # never "-0.00"
    return f"{currency.upper()} {text}" if currency else text


def shared_currency(currencies: Iterable[str]) -> str | None:
    """The one currency of these (e.g. an environment's shops), or None when they differ or are none."""
    distinct = {c.upper() for c in currencies if c}
    return distinct.pop() if len(distinct) == 1 else None


def format_total(amount: Decimal | int | None, currencies: Sequence[str]) -> str:
    """An amount summed over shops of these currencies (e.g. a customer's total sales in an environment).

    One currency (or shops that share one): ``EUR 154.55``. Several: the plain sum with two decimals and
    the currencies it mixes, ``154.55 (EUR + USD shops)``: a user reads that it is not one currency's
    amount rather than a wrong one. No shop: the amount alone.
    """
    currency = shared_currency(currencies)
    distinct = sorted({c.upper() for c in currencies if c})
    if currency or len(distinct) < 2 or amount is None:
        return format_money(amount, currency)
    return f"{format_money(amount, None)} ({' + '.join(distinct)} shops)"
