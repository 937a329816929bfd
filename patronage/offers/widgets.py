"""A gallery picker: the images as radio cards with their thumbnails, so staff choose by looking."""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget


class GalleryRadioSelect(forms.RadioSelect):
    """Radio buttons over ``GalleryImage`` choices, each drawn as a card with the picture in it.

    Works without JavaScript (a radio group is a form control browsers know); the cards wrap in a grid
    that scrolls when the gallery grows.
    """

    template_name = "admin/offers/widgets/gallery_select.html"
    option_template_name = "admin/offers/widgets/gallery_option.html"

    def create_option(
        self,
        name: str,
        value: Any,
        label: Any,
        selected: Any,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        # ModelChoiceField hands over the row itself, so the URL costs no query per image.
        image = getattr(value, "instance", None)
        option["image_url"] = image.panel_url if image is not None and image.file else ""
        option["image_size"] = f"{image.width}x{image.height}" if image is not None else ""
        return option


class ShopCheckboxes(UnfoldAdminCheckboxSelectMultipleWidget):
    """The shops as checkboxes, each marked with its environment's slug so the form's script shows only the
    shops of the environment picked above (``offers/shops.js``)."""

    class Media:
        js = ["offers/shops.js"]

    def create_option(
        self,
        name: str,
        value: Any,
        label: Any,
        selected: Any,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        shop = getattr(value, "instance", None)
        if shop is not None:
            option["attrs"]["data-environment"] = shop.environment.slug
        return option
