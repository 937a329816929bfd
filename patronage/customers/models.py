from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.workspace.models import Environment


class CustomerProfile(models.Model):
    """A customer of every application in one environment.

    Well-known fields live in columns (searchable, constrained); anything else the shop sends is kept in
    ``attributes``. ``closed_sessions``/``total_sales`` are kept up to date by the session services under
    the profile's row lock, so the list pages never aggregate orders.
    """

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="customer_profiles")
    integration_id = models.CharField("integration ID", max_length=1000)
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550123")
    birth_date = models.DateField(null=True, blank=True)
    tax_exempt = models.BooleanField(default=False)
    accepts_marketing = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)
    closed_sessions = models.PositiveIntegerField(default=0)
    total_sales = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))
    created = models.DateTimeField(default=clock.now)
    last_activity = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "integration_id"], name="profile_integration_id_unique"
            ),
            models.UniqueConstraint(
                "environment",
                Lower("email"),
                condition=models.Q(email__isnull=False),
                name="profile_email_ci_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "last_activity"], name="profile_env_activity"),
            models.Index(fields=["environment", "created"], name="profile_env_created"),
        ]

    def __str__(self) -> str:
        return self.integration_id
