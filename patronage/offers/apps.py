from __future__ import annotations

import datetime as dt
from typing import Any

from django.apps import AppConfig
from django.db.models import QuerySet


def offer_redeemers(lower: dt.datetime | None, upper: dt.datetime | None) -> QuerySet[Any]:
    """Customers with an offer redemption in [lower, upper): the customers list's "redemption date" filter."""
    from patronage.customers.models import CustomerProfile

    window: dict[str, dt.datetime] = {}
    if lower is not None:
        window["offer_offerredemptions__redeemed_at__gte"] = lower
    if upper is not None:
        window["offer_offerredemptions__redeemed_at__lt"] = upper
    if not window:
        window["offer_offerredemptions__isnull"] = False  # type: ignore[assignment]
    # One filter() call: both bounds apply to the same redemption.
    return CustomerProfile.objects.filter(**window)


class OffersConfig(AppConfig):
    name = "patronage.offers"
    label = "offers"
    verbose_name = "Customer private offers"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # Pillow refuses to decode anything much larger than the gallery accepts (decompression bombs).
        Image.MAX_IMAGE_PIXELS = settings.PATRONAGE_IMAGE_MAX_PIXELS
        from patronage.customers.selectors import REDEMPTION_SOURCES

        REDEMPTION_SOURCES["offers"] = offer_redeemers
        from .imports import register as register_imports

        register_imports()
