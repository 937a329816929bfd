"""Campaigns, their rulesets, the evaluation tree, budgets, the effect ledger and webhooks.

A campaign belongs to one application and sits in one evaluation group of that application's tree. Its
rules live in versioned rulesets: an edit makes a new version and the campaign points at the active one,
so every effect names the version that produced it. What a closed session committed is recorded in the
effect ledger (``EffectRecord``); rollbacks, budget releases and a customer's figures are derived from it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models

from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession, Event
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application


def _money() -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))


class EvaluationMode(models.TextChoices):
    STACKABLE = "stackable", "Stackable: every triggered campaign applies"
    LIST_ORDER = "listOrder", "List order: the first triggered campaign applies"
    LOWEST_DISCOUNT = "lowestDiscount", "Lowest discount: only the smallest discount applies"
    HIGHEST_DISCOUNT = "highestDiscount", "Highest discount: only the largest discount applies"


class EvaluationScope(models.TextChoices):
    SESSION = "session", "Session"
    CART_ITEM = "cartItem", "Cart item"


class EvaluationGroup(models.Model):
    """A node of an application's campaign evaluation tree. The base group (no parent) holds everything;
    groups nest at most two levels below it. Children (groups and campaigns) run in ``position`` order."""

    MAX_DEPTH = 2

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="evaluation_groups")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    mode = models.CharField(
        "evaluation mode", max_length=20, choices=EvaluationMode.choices, default=EvaluationMode.STACKABLE
    )
    scope = models.CharField(
        "evaluation scope", max_length=10, choices=EvaluationScope.choices, default=EvaluationScope.SESSION
    )
    position = models.PositiveIntegerField(default=0)
    locked = models.BooleanField(default=False)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["application", "parent_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application"], condition=models.Q(parent=None), name="evaluation_group_one_base"
            ),
        ]
        verbose_name = "evaluation group"

    def __str__(self) -> str:
        return self.name

    @property
    def is_base(self) -> bool:
        return self.parent_id is None


class CampaignState(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"
    ARCHIVED = "archived", "Archived"


class CampaignType(models.TextChoices):
    ADVANCED = "advanced", "Advanced"
    CART_ITEM = "cartItem", "Cart item"


FEATURES = ["coupons", "referrals", "loyalty", "giveaways", "strikethrough", "achievements"]


class Campaign(models.Model):
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=CampaignState.choices, default=CampaignState.DISABLED)
    start_time = models.DateTimeField("starts", null=True, blank=True)
    end_time = models.DateTimeField("ends", null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    features = models.JSONField(default=list, blank=True)
    type = models.CharField(max_length=10, choices=CampaignType.choices, default=CampaignType.ADVANCED)
    # Store integration IDs; a campaign with linked stores runs only for sessions naming one of them.
    linked_stores = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    evaluation_group = models.ForeignKey(EvaluationGroup, on_delete=models.PROTECT, related_name="campaigns")
    position = models.PositiveIntegerField(default=0, help_text="Order within its evaluation group.")
    # Talon.One's LimitConfig list: [{"action", "limit", "period"?, "entities": [...]}].
    limits = models.JSONField(default=list, blank=True)
    active_ruleset = models.ForeignKey(
        "Ruleset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(default=clock.now, editable=False)
    updated = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deleting keeps the row (its ledger is history the customers' figures come from); it vanishes from
    # every list and the API.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["application", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                "application",
                "name",
                condition=models.Q(deleted_at=None),
                name="campaign_name_unique_per_application",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def frontend_state(self, now: dt.datetime | None = None) -> str:
        """Talon.One's computed state: archived, disabled, expired, scheduled or running."""
        if self.state != CampaignState.ENABLED:
            return str(self.state)
        now = now or clock.now()
        if self.end_time is not None and self.end_time <= now:
            return "expired"
        if self.start_time is not None and self.start_time > now:
            return "scheduled"
        return "running"


class Ruleset(models.Model):
    """One version of a campaign's rules, in Talang (Talon.One's JSON rule language). Never edited."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rulesets")
    version = models.PositiveIntegerField()
    rules = models.JSONField(default=list)
    bindings = models.JSONField(default=list, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=clock.now, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "version"], name="ruleset_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} v{self.version}"


class EffectRecord(models.Model):
    """The effect ledger: one effect a closed session committed (and what undid it, when it was undone).

    ``amount`` is the money it granted (discounts) or 0; ``released`` how much of it rollbacks took back.
    ``consumed`` lists the budget counters it moved, as ``[[counter_id, amount], ...]``, so a rollback
    releases exactly what the close consumed.
    """

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+")
    # A closed session's effects; events and rule-engine profile updates commit at once, without one.
    session = models.ForeignKey(
        CustomerSession, null=True, blank=True, on_delete=models.CASCADE, related_name="effect_records"
    )
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    profile = models.ForeignKey(
        CustomerProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="effect_records"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="effect_records")
    ruleset = models.ForeignKey(Ruleset, on_delete=models.PROTECT, related_name="+")
    rule_index = models.PositiveIntegerField()
    rule_name = models.CharField(max_length=255)
    effect_type = models.CharField(max_length=64)
    props = models.JSONField(default=dict)
    amount = _money()
    released = _money()
    position = models.PositiveIntegerField(null=True, blank=True)
    sub_position = models.PositiveIntegerField(null=True, blank=True)
    units = models.PositiveIntegerField(default=1, help_text="Cart units the effect covers.")
    returned_units = models.PositiveIntegerField(default=0)
    consumed = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=clock.now)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "id"]
        indexes = [
            models.Index(fields=["session", "rolled_back_at"], name="effect_record_session"),
            models.Index(fields=["campaign", "created"], name="effect_record_campaign_day"),
            models.Index(fields=["profile", "application"], name="effect_record_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.effect_type} #{self.pk}"

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.released


class BudgetCounter(models.Model):
    """What one budget of a campaign has used, for one scope (``entity_key``: "" for the campaign,
    "Profile=42", "Store=berlin|Profile=42", ...) and one period ("" when it never resets, "2026-12-05",
    "2026-W49", "2026-12", "2026")."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="budget_counters")
    action = models.CharField(max_length=40)
    entity_key = models.CharField(max_length=1200, blank=True)
    period = models.CharField(max_length=10, blank=True)
    counter = _money()

    class Meta:
        ordering = ["campaign", "action", "entity_key", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "action", "entity_key", "period"], name="budget_counter_unique"
            ),
            models.CheckConstraint(condition=models.Q(counter__gte=0), name="budget_counter_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.action} {self.entity_key or 'campaign'} {self.period}"


class Webhook(models.Model):
    """Where a ``triggerWebhook`` effect posts: a URL and the secret its payload is signed with."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=64, editable=False)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["application", "name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    session = models.ForeignKey(
        CustomerSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=clock.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.webhook} #{self.pk}"
