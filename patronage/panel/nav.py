"""The panel's navigation: a page of the panel adds its entry here instead of editing the base template.

The panel owns its pages (``panel/offers.py`` shows the offers app's data), so the entries are registered
below; the domain apps never import the panel.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str
    order: int = 100


@dataclass(frozen=True)
class NavLink:
    url: str
    label: str
    current: bool


_items: dict[str, NavItem] = {}


def register(item: NavItem) -> None:
    _items[item.url_name] = item


def links(*, shop_slug: str, current: str) -> list[NavLink]:
    return [
        NavLink(reverse(item.url_name, kwargs={"shop": shop_slug}), item.label, item.url_name == current)
        for item in sorted(_items.values(), key=lambda item: (item.order, item.label))
    ]


def home_url(*, shop_slug: str) -> str:
    """Where a signed-in customer lands: the first page of the navigation (My offers once offers exist)."""
    return links(shop_slug=shop_slug, current="")[0].url


register(NavItem("panel:offers", "My offers", order=10))
register(NavItem("panel:codes", "My codes", order=20))
register(NavItem("panel:account", "Account", order=90))
