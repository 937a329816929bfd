from __future__ import annotations

from decimal import Decimal

from django.db import models

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application


def money_field() -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))


class SessionState(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    PARTIALLY_RETURNED = "partially_returned"


# Talon.One's session life cycle: state -> states it may move to.
TRANSITIONS: dict[str, set[str]] = {
    SessionState.OPEN: {SessionState.CLOSED, SessionState.CANCELLED},
    SessionState.CLOSED: {SessionState.CANCELLED, SessionState.PARTIALLY_RETURNED},
    SessionState.PARTIALLY_RETURNED: {SessionState.CANCELLED},
    SessionState.CANCELLED: set(),
}
# States whose session counts as an order (a sale of the customer).
ORDER_STATES = {SessionState.CLOSED, SessionState.PARTIALLY_RETURNED}


class CustomerSession(models.Model):
    """A cart in one application; once closed, an order.

    It outlives its customer: ``profile`` goes NULL on deletion while ``profile_integration_id`` keeps the
    snapshot (cleared when the customer asks for erasure).
    """

    # Neither foreign key has an index of its own: the indexes in Meta start with each of them.
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="sessions", db_index=False
    )
    integration_id = models.CharField("integration ID", max_length=1000)
    profile = models.ForeignKey(
        CustomerProfile,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
        db_index=False,
    )
    profile_integration_id = models.CharField("customer integration ID", max_length=1000, blank=True)
    store_integration_id = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=20, choices=SessionState.choices, default=SessionState.OPEN)
    coupon_codes = models.JSONField(default=list, blank=True)
    referral_code = models.CharField(max_length=100, blank=True)
    loyalty_cards = models.JSONField(default=list, blank=True)
    identifiers = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    additional_costs = models.JSONField(default=dict, blank=True)
    # Positions 0..n-1 hold the cart: a shorter new cart deletes the rest, a longer one needs no delete.
    cart_item_count = models.PositiveIntegerField(default=0)
    cart_item_total = money_field()
    additional_cost_total = money_field()
    total = money_field()
    returned_total = money_field()
    first_session = models.BooleanField(default=True)
    anonymized = models.BooleanField(default=False)
    # What the last write's evaluation answered (GET of the session shows it).
    effects = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=clock.now)
    updated = models.DateTimeField(default=clock.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "integration_id"], name="session_integration_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["profile", "state"], name="session_profile_state"),
            models.Index(fields=["application", "state", "closed_at"], name="session_app_state_closed"),
        ]

    def __str__(self) -> str:
        return self.integration_id

    @property
    def is_order(self) -> bool:
        return self.state in ORDER_STATES

    @property
    def sales(self) -> Decimal:
        """What this session adds to its customer's total sales."""
        return self.total - self.returned_total if self.is_order else Decimal("0")


class CartItem(models.Model):
    # Indexed by cart_item_position_unique, which starts with it: every cart update rewrites the items, and
    # each index is paid per item.
    session = models.ForeignKey(
        CustomerSession, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=255, blank=True)
    sku = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    returned_quantity = models.PositiveIntegerField(default=0)
    price = money_field()
    category = models.CharField(max_length=255, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Talon.One fields we keep and echo but do not compute with (weight, dimensions, product, ...).
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="cart_item_position_unique"),
            models.CheckConstraint(
                condition=models.Q(returned_quantity__lte=models.F("quantity")),
                name="cart_item_returned_lte_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} x{self.quantity}"


class Event(models.Model):
    """Something that happened to a session or profile that the API reports by ID (e.g. a return)."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="events")
    session = models.ForeignKey(CustomerSession, null=True, on_delete=models.SET_NULL, related_name="events")
    profile_integration_id = models.CharField("customer integration ID", max_length=1000, blank=True)
    store_integration_id = models.CharField(max_length=1000, blank=True)
    type = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True)
    effects = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(
                fields=["application", "profile_integration_id", "created"], name="event_profile_created"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class SessionReturn(models.Model):
    session = models.ForeignKey(CustomerSession, on_delete=models.CASCADE, related_name="returns")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+")
    profile_integration_id = models.CharField("customer integration ID", max_length=1000, blank=True)
    created = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"Return #{self.pk} of {self.session_id}"


class ReturnedItem(models.Model):
    session_return = models.ForeignKey(SessionReturn, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.position} x{self.quantity}"
