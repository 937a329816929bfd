"""Campaign templates: the rules of the campaigns marketers make most, from a few answers.

Pure functions returning Talang rules (what ``services.ruleset_create`` takes), so the back office's
"New campaign from template", the demo data and the tests make the same campaigns. Each template is also
described in :data:`TEMPLATES` (its label, what it does, the answers it needs) for the back office.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Rule = dict[str, Any]
CART_ITEMS = [".", "Session", "CartItems"]


def _number(value: Decimal | int | float | str) -> int | float:
    """A literal for the JSON: whole numbers stay whole (10, not 10.0)."""
    amount = Decimal(str(value))
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _in_category(category: str) -> list[Any]:
    return ["filter", CART_ITEMS, ["Item"], ["=", [".", "Item", "Category"], category]]


def customer_group_discount(*, name: str, group: str, percent: Decimal | int | float | str) -> list[Rule]:
    """``percent`` off the cart items of customers in a customer group (named as the group is named)."""
    return [
        {
            "title": f"{_number(percent)}% off for {group}",
            "condition": ["and", ["=", [".", "Profile", "Group"], group]],
            "effects": [
                [
                    "setDiscount",
                    name,
                    ["*", [".", "Session", "CartItemTotal"], ["/", _number(percent), 100]],
                    "cartItems",
                ]
            ],
        }
    ]


def free_shipping_over(
    *, name: str, amount: Decimal | int | float | str, cost: str = "shipping"
) -> list[Rule]:
    """All of ``cost`` (an additional cost, shipping by default) off once the cart items reach ``amount``."""
    return [
        {
            "title": f"Free {cost} from {_number(amount)}",
            "condition": ["and", [">=", [".", "Session", "CartItemTotal"], _number(amount)]],
            "effects": [["setDiscountPerAdditionalCost", name, cost]],
        }
    ]


def percent_off_category(*, name: str, category: str, percent: Decimal | int | float | str) -> list[Rule]:
    """``percent`` off every item of one category."""
    items = _in_category(category)
    return [
        {
            "title": f"{_number(percent)}% off {category}",
            "condition": [
                "and",
                ["exists", CART_ITEMS, ["Item"], ["=", [".", "Item", "Category"], category]],
            ],
            "effects": [
                [
                    "setDiscountPerItem",
                    name,
                    items,
                    ["Item"],
                    ["*", [".", "Item", "Total"], ["/", _number(percent), 100]],
                ]
            ],
        }
    ]


def three_for_two(*, name: str, category: str = "") -> list[Rule]:
    """Of every three units (of a category, or of the whole cart), the cheapest is free."""
    items = _in_category(category) if category else CART_ITEMS
    return [
        {
            "title": f"3 for 2 on {category}" if category else "3 for 2",
            "condition": ["and", [">=", ["quantity", items], 3]],
            "effects": [
                [
                    "setDiscountPerItem",
                    name,
                    ["cheapest", items, ["floor", ["/", ["quantity", items], 3]]],
                    ["Item"],
                    [".", "Item", "Price"],
                ]
            ],
        }
    ]


@dataclass(frozen=True)
class Answer:
    """One thing a template asks: ``kind`` is "group" (a customer group of the shop's environment),
    "percent", "money" or "text"."""

    name: str
    label: str
    kind: str
    help: str = ""
    required: bool = True


@dataclass(frozen=True)
class Template:
    key: str
    label: str
    description: str
    answers: tuple[Answer, ...]
    build: Callable[..., list[Rule]]


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "customer_group_discount",
            "Customer group discount",
            "A percentage off the cart items for the customers of one group (e.g. VIP).",
            (
                Answer("group", "Customer group", "group"),
                Answer("percent", "Discount (%)", "percent"),
            ),
            customer_group_discount,
        ),
        Template(
            "free_shipping_over",
            "Free shipping over an amount",
            "Shipping is free once the cart items reach an amount.",
            (Answer("amount", "From a cart of", "money", "The cart items' total, before discounts."),),
            free_shipping_over,
        ),
        Template(
            "percent_off_category",
            "N% off a category",
            "A percentage off every item of one category.",
            (
                Answer("category", "Category", "text", "As the shop sends it in its cart items."),
                Answer("percent", "Discount (%)", "percent"),
            ),
            percent_off_category,
        ),
        Template(
            "three_for_two",
            "3 for 2",
            "Of every three units, the cheapest is free.",
            (
                Answer(
                    "category",
                    "Category",
                    "text",
                    "Leave it empty for the whole cart.",
                    required=False,
                ),
            ),
            three_for_two,
        ),
    )
}
