"""Money is Decimal end to end; floats only exist at the JSON edge."""

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
