"""The back office's sidebar: grouped as staff think of the product, not by Django app.

Each entry shows only to staff who may view that model (the same check Django's admin index makes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.urls import reverse_lazy


def _can_view(app_label: str, model: str) -> Callable[[HttpRequest], bool]:
    def check(request: HttpRequest) -> bool:
        user = request.user
        return user.has_perm(f"{app_label}.view_{model}") or user.has_perm(f"{app_label}.change_{model}")

    return check


def _item(title: str, icon: str, app_label: str, model: str) -> dict[str, Any]:
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app_label}_{model}_changelist"),
        "permission": _can_view(app_label, model),
    }


_NAVIGATION = [
    {
        "title": "Customers",
        "items": [
            _item("Customer profiles", "group", "customers", "customerprofile"),
            _item("Customer groups", "groups", "customers", "customergroup"),
            _item("Segments", "filter_alt", "segments", "segment"),
            _item("Customer private offers", "sell", "offers", "offer"),
            _item("Image gallery", "photo_library", "offers", "galleryimage"),
        ],
    },
    {
        "title": "Orders",
        "items": [_item("Customer sessions", "shopping_cart", "customer_sessions", "customersession")],
    },
    {
        "title": "Campaigns",
        "items": [
            _item("Campaigns", "campaign", "campaigns", "campaign"),
            _item("Coupons", "local_activity", "coupons", "coupon"),
            _item("Referral codes", "share", "coupons", "referral"),
            _item("Promo codes campaigns accept", "confirmation_number", "coupons", "campaigncodesource"),
            {
                "title": "Evaluation tree",
                "icon": "account_tree",
                "link": reverse_lazy("admin:campaigns_campaign_tree"),
                "permission": _can_view("campaigns", "campaign"),
            },
        ],
    },
    {
        "title": "Promo codes",
        "items": [_item("Groups of promo codes", "confirmation_number", "promocodes", "promocodegroup")],
    },
    {"title": "Mailings", "items": [_item("Mailings", "mail", "mailings", "mailing")]},
    {"title": "Import/Export", "items": [_item("Imports", "upload_file", "dataio", "importjob")]},
    {
        "title": "Workspace",
        "items": [
            _item("Applications", "storefront", "workspace", "application"),
            _item("API keys", "key", "workspace", "apikey"),
            _item("Management API keys", "vpn_key", "workspace", "managementkey"),
            _item("Environments", "layers", "workspace", "environment"),
        ],
    },
    {
        "title": "Administration",
        "items": [
            _item("Staff users", "person", "auth", "user"),
            _item("Staff roles", "admin_panel_settings", "auth", "group"),
            _item("Background jobs", "schedule", "django_tasks_database", "dbtaskresult"),
        ],
    },
]


def navigation(request: HttpRequest) -> list[dict[str, Any]]:
    return _NAVIGATION
