"""Back-office forms for coupons: generating from a pattern, personal codes for recipients, importing a CSV,
editing one coupon, and the promo-code groups a campaign accepts.

Thin: ``codes.check_pattern`` and the services are the validators; these forms parse what was typed and say
the problems on the field they belong to.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSplitDateTimeWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from patronage.campaigns.models import Campaign
from patronage.core.errors import DomainError
from patronage.promocodes.models import PromoCodeGroup

from .codes import DEFAULT_ALPHABET, check_pattern
from .models import MAX_CODE_LENGTH, MAX_USAGE_LIMIT, Coupon
from .sources import campaign_code_sources_set

MAX_GENERATED = 1_000_000
MAX_RECIPIENTS = 1000
DEFAULT_PATTERN = "####-####"
MONO = {"class": "coupon-mono"}


def live_campaigns() -> QuerySet[Campaign]:
    return Campaign.objects.filter(deleted_at=None).select_related("application").order_by("name", "id")


class CampaignChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.application.name})"


def _attributes(text: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"The attributes are not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(value, dict):
        raise forms.ValidationError('The attributes must be a JSON object, like {"channel": "newsletter"}')
    return value


def _datetime_field(label: str) -> forms.SplitDateTimeField:
    return forms.SplitDateTimeField(label=label, required=False, widget=UnfoldAdminSplitDateTimeWidget)


class CouponSettingsForm(forms.Form):
    """What every new coupon of a batch shares: limits, dates, attributes and the reservation flags."""

    usage_limit = forms.IntegerField(
        label="Usage limit",
        min_value=0,
        max_value=MAX_USAGE_LIMIT,
        initial=1,
        help_text="How many times each coupon may be redeemed; 0 = unlimited.",
        widget=UnfoldAdminIntegerFieldWidget,
    )
    discount_limit = forms.DecimalField(
        label="Discount limit",
        required=False,
        min_value=Decimal("0"),
        max_digits=18,
        decimal_places=4,
        help_text="A gift-card style value the discounts granted with each coupon draw down; empty = none.",
        widget=UnfoldAdminDecimalFieldWidget,
    )
    reservation_limit = forms.IntegerField(
        label="Reservation limit",
        required=False,
        min_value=0,
        max_value=MAX_USAGE_LIMIT,
        help_text="How many customers a rule may reserve each coupon for; empty = no limit.",
        widget=UnfoldAdminIntegerFieldWidget,
    )
    start_date = _datetime_field("Valid from")
    expiry_date = _datetime_field("Expires")
    attributes = forms.CharField(
        label="Attributes",
        required=False,
        help_text='A JSON object the rules can read, e.g. {"channel": "newsletter"}.',
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, **MONO}),
    )
    is_reservation_mandatory = forms.BooleanField(
        label="Reservation required",
        required=False,
        help_text="Only customers holding a reservation of the coupon may redeem it.",
        widget=UnfoldBooleanSwitchWidget,
    )
    implicitly_reserved = forms.BooleanField(
        label="Visible to every customer",
        required=False,
        help_text="Shows in every customer's inventory as if reserved for them.",
        widget=UnfoldBooleanSwitchWidget,
    )

    def __init__(self, *args: Any, currency: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if currency:
            self.fields["discount_limit"].label = f"Discount limit ({currency})"

    def clean_attributes(self) -> dict[str, Any]:
        return _attributes(self.cleaned_data.get("attributes") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, expiry = data.get("start_date"), data.get("expiry_date")
        if start and expiry and expiry <= start:
            self.add_error("expiry_date", "The coupons must expire after they become valid.")
        return data

    def settings(self) -> dict[str, Any]:
        """The shared settings as the services' keyword arguments."""
        data = self.cleaned_data
        return {
            "usage_limit": data["usage_limit"],
            "discount_limit": data.get("discount_limit"),
            "reservation_limit": data.get("reservation_limit"),
            "start_date": data.get("start_date"),
            "expiry_date": data.get("expiry_date"),
            "attributes": data.get("attributes") or {},
            "is_reservation_mandatory": bool(data.get("is_reservation_mandatory")),
            "implicitly_reserved": bool(data.get("implicitly_reserved")),
        }


class PatternMixin(forms.Form):
    pattern = forms.CharField(
        label="Code pattern",
        max_length=MAX_CODE_LENGTH,
        initial=DEFAULT_PATTERN,
        help_text="Each # becomes a random character; every other character is kept, e.g. SUMMER-####-####.",
        widget=UnfoldAdminTextInputWidget(attrs=MONO),
    )
    alphabet = forms.CharField(
        label="Characters",
        initial=DEFAULT_ALPHABET,
        strip=True,
        help_text="The characters a # may become (no spaces).",
        widget=UnfoldAdminTextInputWidget(attrs=MONO),
    )

    def check_pattern(self, count: int) -> None:
        pattern, alphabet = self.cleaned_data.get("pattern"), self.cleaned_data.get("alphabet")
        if not pattern or not alphabet or not count:
            return
        try:
            check_pattern(pattern, alphabet, count)
        except DomainError as exc:
            field = "alphabet" if "characters to choose" in exc.message else "pattern"
            self.add_error(field, exc.message)


class GenerateCouponsForm(PatternMixin, CouponSettingsForm):
    count = forms.IntegerField(
        label="Number of coupons",
        min_value=1,
        max_value=MAX_GENERATED,
        initial=100,
        help_text=f"Up to {MAX_GENERATED:,}. Large batches are made in the background while you watch.",
        widget=UnfoldAdminIntegerFieldWidget,
    )
    recipient_integration_id = forms.CharField(
        label="Recipient",
        required=False,
        max_length=1000,
        help_text="A customer's integration ID: only that customer may redeem these coupons. Empty = anyone.",
        widget=UnfoldAdminTextInputWidget,
    )

    field_order = [
        "count",
        "pattern",
        "alphabet",
        "usage_limit",
        "discount_limit",
        "reservation_limit",
        "start_date",
        "expiry_date",
        "recipient_integration_id",
        "attributes",
        "is_reservation_mandatory",
        "implicitly_reserved",
    ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_pattern(data.get("count") or 0)
        return data

    def params(self) -> dict[str, Any]:
        """The batch as ``coupon_generation_start``'s ``params`` (JSON: dates as ISO text, money as text)."""
        data = self.settings()
        return {
            **data,
            "pattern": self.cleaned_data["pattern"],
            "alphabet": self.cleaned_data["alphabet"],
            "recipient_integration_id": self.cleaned_data.get("recipient_integration_id") or "",
            "discount_limit": str(data["discount_limit"]) if data["discount_limit"] is not None else None,
            "start_date": data["start_date"].isoformat() if data["start_date"] else None,
            "expiry_date": data["expiry_date"].isoformat() if data["expiry_date"] else None,
        }


class RecipientsForm(PatternMixin, CouponSettingsForm):
    recipients = forms.CharField(
        label="Customers",
        help_text=f"Customer integration IDs, one per line (up to {MAX_RECIPIENTS:,}): each gets one "
        "personal code.",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 8, **MONO}),
    )

    field_order = ["recipients", "pattern", "alphabet"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A personal code is its customer's alone: nothing to reserve.
        del self.fields["is_reservation_mandatory"], self.fields["implicitly_reserved"]

    def settings(self) -> dict[str, Any]:
        shared = super().settings()
        del shared["is_reservation_mandatory"], shared["implicitly_reserved"]
        return shared

    def clean_recipients(self) -> list[str]:
        lines = [line.strip() for line in (self.cleaned_data.get("recipients") or "").splitlines()]
        recipients = list(dict.fromkeys(line for line in lines if line))
        if not recipients:
            raise forms.ValidationError("Paste at least one customer integration ID.")
        if len(recipients) > MAX_RECIPIENTS:
            raise forms.ValidationError(
                f"{len(recipients):,} customers is too many at once: up to {MAX_RECIPIENTS:,}, please."
            )
        too_long = [r for r in recipients if len(r) > 1000]
        if too_long:
            raise forms.ValidationError(f"An integration ID is at most 1000 characters: {too_long[0][:40]}…")
        return recipients

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_pattern(len(data.get("recipients") or []))
        return data


class CouponForm(forms.ModelForm):
    """One coupon: everything but its value and counters."""

    attributes = forms.CharField(
        required=False,
        help_text='A JSON object the rules can read, e.g. {"channel": "newsletter"}.',
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, **MONO}),
    )

    class Meta:
        model = Coupon
        fields = [
            "usage_limit",
            "discount_limit",
            "reservation_limit",
            "start_date",
            "expiry_date",
            "recipient_integration_id",
            "attributes",
            "is_reservation_mandatory",
            "implicitly_reserved",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["attributes"] = json.dumps(self.instance.attributes or {}, indent=2)
            currency = self.instance.campaign.application.currency
            if "discount_limit" in self.fields:
                self.fields["discount_limit"].label = f"Discount limit ({currency})"

    def clean_attributes(self) -> dict[str, Any]:
        return _attributes(self.cleaned_data.get("attributes") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, expiry = data.get("start_date"), data.get("expiry_date")
        if start and expiry and expiry <= start:
            self.add_error("expiry_date", "The coupon must expire after it becomes valid.")
        limit = data.get("usage_limit")
        if limit and limit > MAX_USAGE_LIMIT:
            self.add_error("usage_limit", f"At most {MAX_USAGE_LIMIT:,} (0 = unlimited).")
        elif limit and limit < self.instance.usage_counter:
            self.add_error(
                "usage_limit",
                f"It was already redeemed {self.instance.usage_counter} times: the limit cannot be lower "
                "(0 = unlimited).",
            )
        return data


class CampaignChoiceForm(forms.Form):
    campaign = CampaignChoiceField(
        queryset=Campaign.objects.none(), label="Campaign", widget=UnfoldAdminSelectWidget
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = live_campaigns()  # type: ignore[attr-defined]


class CodeSourcesForm(forms.Form):
    """The promo-code groups (of the campaign's environment) whose issued codes the campaign accepts."""

    groups = forms.ModelMultipleChoiceField(
        queryset=PromoCodeGroup.objects.none(),
        required=False,
        label="Promo-code groups",
        help_text="A code issued from one of these groups (by a mailing, say) is accepted at checkout like a "
        "coupon of this campaign, once.",
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = PromoCodeGroup.objects.filter(  # type: ignore[attr-defined]
            environment_id=campaign.application.environment_id
        ).order_by("name")

    def save(self, *, campaign: Campaign, actor: Any) -> None:
        """Make the chosen groups the campaign's code sources (audited against the campaign)."""
        campaign_code_sources_set(campaign=campaign, groups=self.cleaned_data["groups"], actor=actor)
