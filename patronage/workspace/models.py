from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from patronage.core import clock


class Environment(models.Model):
    """Sandbox or live: exactly two rows, made by a migration. Customer data is per environment."""

    SANDBOX = "sandbox"
    LIVE = "live"
    SLUGS = [(SANDBOX, "Sandbox"), (LIVE, "Live")]

    slug = models.CharField(max_length=16, unique=True, choices=SLUGS)
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_sandbox(self) -> bool:
        return self.slug == self.SANDBOX


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. Europe/Warsaw)")


DISCOUNT_SCOPES = [
    ("sessionTotal", "Session total (items and additional costs)"),
    ("cartItems", "Cart items"),
    ("additionalCosts", "Additional costs"),
]


class CodeCase(models.TextChoices):
    """Talon.One's ``couponCaseSensitivity``: how an application stores and matches codes."""

    SENSITIVE = "sensitive", "Case sensitive: codes match exactly as typed"
    UPPER = "insensitive-uppercase", "Not case sensitive, stored in upper case"
    LOWER = "insensitive-lowercase", "Not case sensitive, stored in lower case"


class Application(models.Model):
    """A shop or storefront. Applications of one environment share customer profiles."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="applications")
    currency = models.CharField(
        max_length=3,
        default="USD",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as USD or EUR.")],
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    description = models.TextField(blank=True)
    created = models.DateTimeField(default=clock.now, editable=False)
    # Campaign engine settings (Talon.One's Application fields of the same names).
    default_discount_scope = models.CharField(
        max_length=20,
        choices=DISCOUNT_SCOPES,
        default="sessionTotal",
        help_text="What a session discount applies to when its rule does not say.",
    )
    enable_cascading_discounts = models.BooleanField(
        "cascading discounts",
        default=False,
        help_text="Later campaigns compute on the totals and prices earlier campaigns already discounted.",
    )
    enable_flattened_cart_items = models.BooleanField(
        "flatten cart items",
        default=False,
        help_text="A line of quantity n counts as n units: per-item discounts apply per unit.",
    )
    enable_partial_discounts = models.BooleanField(
        "partial discounts",
        default=False,
        help_text="When a budget cannot cover a whole discount, grant what remains instead of nothing.",
    )
    coupon_code_case = models.CharField(
        "coupon code case",
        max_length=24,
        choices=CodeCase.choices,
        default=CodeCase.UPPER,
        help_text="How coupon and referral codes are stored and matched. Codes made before a change keep "
        "their case.",
    )
    # Bumped in the same transaction as every campaign, ruleset or evaluation-group change: each
    # engine request reads it, so every server process recompiles on the next request after an edit.
    rules_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment.slug})"


class ShownOnceKey(models.Model):
    """What API keys of both kinds share: only a SHA-256 digest of the key is stored (``digest_key``) and
    the key itself is shown once, when it is created; it expires or is revoked, never deleted."""

    # Each kind declares these with its own labels.
    name: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    prefix = models.CharField(
        max_length=12, editable=False, help_text="First characters, to recognise a key."
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= clock.now():
            return "expired"
        return "active"


class ApiKey(ShownOnceKey):
    """An Integration API key. Only a SHA-256 digest is stored; the key is shown once when created."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Leave empty for a key that never expires."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"


class ManagementKey(ShownOnceKey):
    """A Management API key of one staff user; it acts with that user's permissions, checked per request.

    Like an Integration API key, only a SHA-256 digest is stored and the key is shown once when created.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="management_keys",
        verbose_name="owner",
        help_text="The key can do what this staff user can do, never more.",
    )
    name = models.CharField(max_length=200, help_text="What the key is for, e.g. the nightly export script.")
    expires_at = models.DateTimeField(
        "expires", null=True, blank=True, help_text="Leave empty for a key that never expires."
    )
    last_used_at = models.DateTimeField(
        "last used", null=True, blank=True, editable=False, help_text="Recorded at most once a minute."
    )
    revoked_at = models.DateTimeField("revoked", null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "Management API key"


def digest_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough (no dictionary to attack) and keeps auth cheap.
    return hashlib.sha256(key.encode()).hexdigest()
