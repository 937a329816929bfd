"""Back-office forms for offers, the gallery, redemptions and the "why (not) shown" tool.

Thin: the services validate and their errors land on the fields they point at.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Q
from unfold.widgets import (
    UnfoldAdminEmailInputWidget,
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSplitDateTimeWidget,
    UnfoldAdminTextInputWidget,
    UnfoldAdminURLInputWidget,
)

from patronage.core.errors import DomainError
from patronage.customers.forms import add_domain_errors
from patronage.customers.models import CustomerProfile
from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field
from patronage.workspace.models import Application

from .models import GalleryImage, Offer
from .services import OfferInput, gallery_image_check, offer_check
from .widgets import GalleryRadioSelect, ShopCheckboxes

IMAGE_FIELDS = ("picture", "image_small", "image_medium", "image_big")


def _gallery_field(label: str, help_text: str) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=GalleryImage.objects.all(),
        label=label,
        empty_label=None,
        widget=GalleryRadioSelect,
        help_text=help_text,
        error_messages={"required": "Pick an image from the gallery."},
    )


class OfferForm(EnvironmentChoiceMixin, forms.ModelForm):
    # Chosen by slug, like the customers form.
    environment = environment_field("Offers are shown to the customers of this environment's shops.")
    applications = forms.ModelMultipleChoiceField(
        queryset=Application.objects.select_related("environment").order_by("environment__slug", "name"),
        label="Shops",
        widget=ShopCheckboxes,
        help_text="The applications whose customers see the offer.",
        error_messages={
            "required": "Pick at least one shop.",
            "invalid_choice": "Pick only shops of the offer's environment.",
        },
    )
    link = forms.URLField(
        max_length=500,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,
        help_text="Where the picture leads in the customer panel.",
    )
    picture = _gallery_field("Picture", "Shown in the customer panel; a click on it opens the link.")
    image_small = _gallery_field("Small image", "Mobile app.")
    image_medium = _gallery_field("Medium image", "Mobile app.")
    image_big = _gallery_field("Big image", "Mobile app.")

    class Meta:
        model = Offer
        fields = [
            "environment",
            "system_name",
            "name",
            "description",
            "validity_text",
            "link",
            "picture",
            "offer_type",
            "applications",
            "starts_at",
            "ends_at",
            "sort_order",
            "is_active",
            "is_public",
            "link_type",
            "object_id",
            "image_small",
            "image_medium",
            "image_big",
        ]
        help_texts = {
            "is_public": "Shown to every signed-in customer of the shops, without email assignments. "
            "Cannot be changed once the offer is saved.",
            "offer_type": "Shown as a badge on the offer.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shops = self.fields.get("applications")
        if isinstance(shops, forms.ModelMultipleChoiceField):
            # Only the shops of the offer's environment are choices: a Live offer never lists a Sandbox shop.
            every = Application.objects.select_related("environment").order_by("environment__slug", "name")
            if self.instance.pk:
                shops.queryset = every.filter(environment_id=self.instance.environment_id)
            elif self.is_bound:
                shops.queryset = every.filter(environment__slug=self.data.get("environment") or "")
            else:
                # Every shop is drawn, marked with its environment; the page shows those of the chosen one.
                shops.label_from_instance = lambda obj: f"{obj.name} ({obj.environment.name})"  # type: ignore[method-assign]
        if self.instance.pk:
            self.initial.setdefault("applications", list(self.instance.applications.all()))

    def offer_input(self) -> OfferInput:
        data = self.cleaned_data
        return OfferInput(
            system_name=data.get("system_name") or "",
            name=data.get("name") or "",
            description=data.get("description") or "",
            validity_text=data.get("validity_text") or "",
            link=data.get("link") or "",
            picture=data.get("picture"),  # type: ignore[arg-type]
            offer_type=data.get("offer_type") or "",
            applications=list(data.get("applications") or []),
            starts_at=data.get("starts_at"),  # type: ignore[arg-type]
            ends_at=data.get("ends_at"),  # type: ignore[arg-type]
            sort_order=data.get("sort_order") or 0,
            is_active=bool(data.get("is_active")),
            is_public=bool(data.get("is_public")),
            link_type=data.get("link_type") or "",
            object_id=data.get("object_id") or "",
            image_small=data.get("image_small"),  # type: ignore[arg-type]
            image_medium=data.get("image_medium"),  # type: ignore[arg-type]
            image_big=data.get("image_big"),  # type: ignore[arg-type]
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        environment = self.instance.environment if self.instance.pk else cleaned.get("environment")
        # A field that failed its own check already says why; checking the rest would repeat it.
        if environment is None or self.errors:
            return cleaned
        try:
            offer_check(environment=environment, data=self.offer_input(), pk=self.instance.pk)
        except DomainError as exc:
            add_domain_errors(self, exc)
        return cleaned

    def validate_unique(self) -> None:
        # offer_check did it (system name, end after start), with the message on the field.
        pass


class GalleryImageForm(forms.ModelForm):
    file = forms.FileField(
        label="Image",
        widget=UnfoldAdminFileFieldWidget,
        help_text="PNG, JPEG, GIF or WebP.",
    )

    class Meta:
        model = GalleryImage
        fields = ["file", "title"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_mib = settings.PATRONAGE_IMAGE_MAX_BYTES / 1048576
        side = settings.PATRONAGE_IMAGE_MAX_SIDE
        self.fields["file"].help_text = (
            f"PNG, JPEG, GIF or WebP, at most {limit_mib:g} MiB and {side} x {side} pixels. Customers are "
            f"served a copy {settings.PATRONAGE_IMAGE_DISPLAY_WIDTH} pixels wide when it is wider."
        )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        try:
            gallery_image_check(file=upload)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return upload


class RedemptionForm(forms.Form):
    """Staff record that a customer used an offer (at the till, over the phone)."""

    customer = forms.CharField(
        label="Customer",
        max_length=1000,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "Email or integration ID"}),
        help_text="The customer's email or integration ID.",
    )
    redeemed_at = forms.SplitDateTimeField(
        label="Redeemed at",
        required=False,
        widget=UnfoldAdminSplitDateTimeWidget,
        help_text="Leave empty for now.",
    )
    note = forms.CharField(max_length=500, required=False, widget=UnfoldAdminTextInputWidget)

    def __init__(self, *args: Any, offer: Offer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offer = offer

    def clean_customer(self) -> CustomerProfile:
        raw = self.cleaned_data["customer"].strip()
        matches = list(
            CustomerProfile.objects.filter(environment_id=self.offer.environment_id).filter(
                Q(integration_id=raw) | Q(email__iexact=raw)
            )[:2]
        )
        if not matches:
            raise forms.ValidationError(
                f"No customer of the {self.offer.environment.name} environment has the email or "
                f"integration ID {raw!r}."
            )
        if len(matches) > 1:
            raise forms.ValidationError("Several customers match: type the integration ID.")
        return matches[0]


class WhyShownForm(forms.Form):
    email = forms.EmailField(
        widget=UnfoldAdminEmailInputWidget(attrs={"placeholder": "customer@example.com"}),
        help_text="Assignments match the email case-insensitively.",
    )
    shop = forms.ModelChoiceField(
        queryset=Application.objects.select_related("environment").order_by("environment__slug", "name"),
        empty_label=None,
        widget=UnfoldAdminSelectWidget,
    )
