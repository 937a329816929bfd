from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.workspace.models import Environment


def birth_md_of(birth_date: dt.date | None) -> int | None:
    """Month and day as one sortable number (May 17 -> 517): birthday windows regardless of year."""
    return None if birth_date is None else birth_date.month * 100 + birth_date.day


class CustomerGroup(models.Model):
    """A cluster of customers (wholesale, VIP, ...) within one environment."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="customer_groups")
    name = models.CharField(max_length=100)
    created = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("environment", Lower("name"), name="customer_group_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class CustomerProfile(models.Model):
    """A customer of every application in one environment.

    Well-known fields live in columns (searchable, constrained); anything else the shop sends is kept in
    ``attributes``. ``closed_sessions``/``total_sales`` are kept up to date by the session services under
    the profile's row lock, so the list pages never aggregate orders.
    """

    # No index of its own: every composite index below starts with it, and imports pay for each index.
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="customer_profiles", db_index=False
    )
    integration_id = models.CharField("integration ID", max_length=1000)
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550123")
    birth_date = models.DateField(null=True, blank=True)
    # Derived from birth_date (see birth_md_of); bulk writers set it themselves.
    birth_md = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    group = models.ForeignKey(
        CustomerGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="customers"
    )
    tax_exempt = models.BooleanField(default=False)
    accepts_marketing = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)
    closed_sessions = models.PositiveIntegerField(default=0)
    total_sales = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))
    # Customer-panel password, hashed by Django's hashers; empty means no panel login yet.
    password = models.CharField(max_length=128, blank=True, default="")
    last_login = models.DateTimeField(null=True, blank=True, editable=False)
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
            # With the pk, the list's ordering (the admin adds -pk) comes straight from the index even when
            # an import gave a million customers the same timestamp.
            models.Index(fields=["environment", "last_activity", "id"], name="profile_env_activity_id"),
            models.Index(fields=["environment", "created", "id"], name="profile_env_created_id"),
            models.Index(fields=["environment", "birth_md"], name="profile_env_birth_md"),
            models.Index(fields=["environment", "phone"], name="profile_env_phone"),
        ]

    def __str__(self) -> str:
        return self.integration_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.birth_md = birth_md_of(self.birth_date)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "birth_date" in update_fields:
            kwargs["update_fields"] = {*update_fields, "birth_md"}
        super().save(*args, **kwargs)

    def set_password(self, raw_password: str | None) -> None:
        self.password = make_password(raw_password) if raw_password else ""

    def check_password(self, raw_password: str) -> bool:
        return bool(self.password) and check_password(raw_password, self.password)


class ConsentChange(models.Model):
    """One change of a customer's marketing consent: when, from what to what, and through what.

    What a business shows a regulator. Written in the same transaction as the change itself, by every path
    that changes consent (see ``customers.consent``); only real changes are recorded, and a customer created
    with consent gets one row with no old value ("granted at creation").
    """

    class Source(models.TextChoices):
        BACK_OFFICE = "back_office", "Back office"
        PANEL = "panel", "Customer panel"
        IMPORT = "import", "CSV import"
        API = "api", "Integration API"
        LINK = "unsubscribe_link", "Unsubscribe link"

    # No index of its own: the (profile, created) index starts with it.
    profile = models.ForeignKey(
        CustomerProfile, on_delete=models.CASCADE, related_name="consent_changes", db_index=False
    )
    created = models.DateTimeField(default=clock.now)
    old_value = models.BooleanField(
        null=True, blank=True, help_text="Empty: set when the customer was created"
    )
    new_value = models.BooleanField()
    source = models.CharField(max_length=20, choices=Source.choices)
    # The staff user who made the change (back office, an import they started).
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Which one: the staff user's name (kept if the user goes), the file and import job, the API key's name
    # and prefix (never the key), the shop of the panel, the mailing of the link.
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["profile", "created"], name="consent_change_profile_created")]

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.old_value} -> {self.new_value} ({self.source})"
