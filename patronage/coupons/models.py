"""Coupons, reservations and referrals of campaigns, and the promo-code groups a campaign accepts.

A code names one thing within an application: coupon values are unique per application (stored in the
application's case, see :func:`normalize`), and never equal a promo code of the application's
environment (checked where codes are made: generation, import, upload). Redemptions are rows, written when
a session closes and marked rolled back on cancel, so "who used it, in which order" and the per-customer
counts come from them; ``usage_counter`` is the count the single-statement conditional UPDATE guards.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode, PromoCodeGroup
from patronage.workspace.models import Application, CodeCase

MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 100
MAX_USAGE_LIMIT = 999_999


def normalize(value: str, case: str) -> str:
    """A code as the application stores and compares it."""
    value = value.strip()
    if case == CodeCase.UPPER:
        return value.upper()
    if case == CodeCase.LOWER:
        return value.lower()
    return value


def _money(**kwargs: object) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)  # type: ignore[arg-type]


class Referral(models.Model):
    """A code an advocate shares; friends who use it at checkout are referred by that advocate."""

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="referrals")
    code = models.CharField(max_length=MAX_CODE_LENGTH)
    advocate_integration_id = models.CharField("advocate", max_length=1000)
    # Set: only this friend may use the code.
    friend_integration_id = models.CharField("friend", max_length=1000, blank=True)
    usage_limit = models.PositiveIntegerField(default=1, help_text="0 = unlimited")
    usage_counter = models.PositiveIntegerField(default=0, editable=False)
    start_date = models.DateTimeField(null=True, blank=True)
    expiry_date = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    batch_id = models.CharField(max_length=32, blank=True)
    import_id = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "code"], name="referral_code_unique"),
            models.CheckConstraint(
                condition=models.Q(usage_limit=0) | models.Q(usage_counter__lte=models.F("usage_limit")),
                name="referral_within_usage_limit",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "id"], name="referral_campaign"),
            models.Index(fields=["application", "advocate_integration_id"], name="referral_advocate"),
        ]

    def __str__(self) -> str:
        return self.code


class Coupon(models.Model):
    """A code of a campaign. ``usage_limit`` 0 means unlimited (campaign budgets still apply)."""

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Indexed through coupon_campaign_batch, which starts with it.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="coupons", db_index=False)
    value = models.CharField(max_length=MAX_CODE_LENGTH)
    usage_limit = models.PositiveIntegerField(default=1, help_text="0 = unlimited")
    usage_counter = models.PositiveIntegerField(default=0)
    # A gift-card style value: the discounts granted with the coupon draw it down.
    discount_limit = _money(null=True, blank=True)
    discount_counter = _money(default=Decimal("0"))
    reservation_limit = models.PositiveIntegerField(null=True, blank=True)
    reservation_counter = models.PositiveIntegerField(default=0)
    start_date = models.DateTimeField(null=True, blank=True)
    expiry_date = models.DateTimeField(null=True, blank=True)
    # A personal code: only this customer may redeem it.
    recipient_integration_id = models.CharField("recipient", max_length=1000, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Talon.One's per-coupon LimitConfig list (per-profile budgets only).
    limits = models.JSONField(default=list, blank=True)
    batch_id = models.CharField(max_length=32, blank=True)
    import_id = models.BigIntegerField(null=True, blank=True)
    # The referral whose redemption created this coupon (an advocate's reward).
    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # True: anyone may reserve it; false: a personal code nobody else may reserve.
    reservation = models.BooleanField(default=True)
    is_reservation_mandatory = models.BooleanField("reservation required", default=False)
    implicitly_reserved = models.BooleanField("visible to every customer", default=False)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "value"], name="coupon_value_unique"),
            models.CheckConstraint(
                condition=models.Q(usage_limit=0) | models.Q(usage_counter__lte=models.F("usage_limit")),
                name="coupon_within_usage_limit",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_limit=None)
                | models.Q(discount_counter__lte=models.F("discount_limit")),
                name="coupon_within_discount_limit",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_counter__gte=0), name="coupon_discount_counter"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "batch_id"], name="coupon_campaign_batch"),
            models.Index(
                fields=["application", "recipient_integration_id"],
                condition=~models.Q(recipient_integration_id=""),
                name="coupon_recipient",
            ),
        ]

    def __str__(self) -> str:
        return self.value

    @property
    def discount_remainder(self) -> Decimal | None:
        if self.discount_limit is None:
            return None
        return self.discount_limit - self.discount_counter


class CouponReservation(models.Model):
    """A customer holding a coupon: hard when the coupon requires reservation (only holders may redeem it),
    soft otherwise (it shows in their inventory)."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="reservations", db_index=False)
    profile = models.ForeignKey(CustomerProfile, on_delete=models.CASCADE, related_name="coupon_reservations")
    # Made by a rule's reserveCoupon effect (counted against the reservation limit), not the API.
    by_rule = models.BooleanField(default=False)
    created = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["coupon", "profile"], name="coupon_reservation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon} held by customer {self.profile_id}"


class Redemption(models.Model):
    """One use of a code by a closed session: a coupon, a referral or a promo code of a campaign's group.
    A cancel (or reopen) of the session marks it rolled back and the code's counter goes back."""

    class Kind(models.TextChoices):
        COUPON = "coupon", "Coupon"
        REFERRAL = "referral", "Referral"
        PROMO_CODE = "promocode", "Promo code"

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    coupon = models.ForeignKey(
        Coupon, null=True, blank=True, on_delete=models.CASCADE, related_name="redemptions"
    )
    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="redemptions"
    )
    promo_code = models.ForeignKey(
        PromoCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=MAX_CODE_LENGTH, help_text="copy: kept when the code goes")
    session = models.ForeignKey(CustomerSession, on_delete=models.CASCADE, related_name="redemptions")
    profile = models.ForeignKey(
        CustomerProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="redemptions"
    )
    # The discount the session got with the code (what a coupon's discount limit was drawn down by).
    discount = _money(default=Decimal("0"))
    created = models.DateTimeField(default=clock.now)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["session", "rolled_back_at"], name="redemption_session"),
            models.Index(fields=["profile", "kind"], name="redemption_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.code} in session {self.session_id}"


class CampaignCodeSource(models.Model):
    """A promo-code group whose issued codes a campaign accepts at checkout, as if they were its coupons."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="code_sources")
    group = models.ForeignKey(PromoCodeGroup, on_delete=models.CASCADE, related_name="campaign_sources")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "group"], name="campaign_code_source_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.group} for {self.campaign}"


class GenerationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CouponGeneration(models.Model):
    """A background job making ``requested`` coupons of a campaign from a pattern; its progress shows in the
    back office while it runs."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="coupon_generations")
    requested = models.PositiveIntegerField()
    made = models.PositiveIntegerField(default=0)
    # NewCoupons fields: pattern, alphabet, limits, dates, attributes, flags.
    params = models.JSONField(default=dict)
    batch_id = models.CharField(max_length=32)
    status = models.CharField(
        max_length=10, choices=GenerationStatus.choices, default=GenerationStatus.QUEUED
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=clock.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.requested} coupons for {self.campaign} ({self.status})"
