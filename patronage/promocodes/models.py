"""Promo codes: groups of uploaded single-use codes (the platform never generates them), and the history of
which customer was issued which code, initially or as a repeat.

The issue history outlives codes and groups (a deleted group keeps what customers were sent): issues keep a
copy of the code and of the group's name.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment

MAX_CODE_LENGTH = 64


class PromoCodeGroup(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="promo_code_groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = "group of promo codes"
        verbose_name_plural = "groups of promo codes"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("environment", Lower("name"), name="promo_code_group_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class PromoCode(models.Model):
    """One uploaded code. Active until issued to a customer; redeemed at most once."""

    # The environment is repeated here so that a code is unique across every group of it: at checkout a code
    # must name one voucher.
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+", db_index=False)
    group = models.ForeignKey(PromoCodeGroup, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=MAX_CODE_LENGTH)
    uploaded_at = models.DateTimeField(default=clock.now, editable=False)
    # Uploads pay for every index: the customer links are indexed only where set (see Meta.indexes).
    issued_to = models.ForeignKey(
        CustomerProfile, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(
        CustomerProfile, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "code"], name="promo_code_unique_in_environment"),
            # A code is issued before it can be redeemed.
            models.CheckConstraint(
                condition=models.Q(redeemed_at__isnull=True) | models.Q(issued_at__isnull=False),
                name="promo_code_redeemed_after_issue",
            ),
        ]
        indexes = [
            # "The next active codes of a group", in upload order: what a mailing reserves.
            models.Index(
                fields=["group", "id"], condition=models.Q(issued_at__isnull=True), name="promo_code_active"
            ),
            models.Index(
                fields=["issued_to"], condition=models.Q(issued_to__isnull=False), name="promo_code_issued_to"
            ),
            models.Index(
                fields=["redeemed_by"],
                condition=models.Q(redeemed_by__isnull=False),
                name="promo_code_redeemed_by",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class IssueKind(models.TextChoices):
    INITIAL = "initial", "Initial"
    REPEAT = "repeat", "Repeat"


class PromoCodeIssue(models.Model):
    """A code put in front of a customer (a mailing's ``promocode`` or ``last_promocode`` macro)."""

    # Indexed through promo_issue_profile_group, which starts with it.
    profile = models.ForeignKey(
        CustomerProfile, on_delete=models.CASCADE, related_name="promo_code_issues", db_index=False
    )
    # No database constraints on the code and the group: a mailing records thousands of issues a second and
    # the per-row checks were a third of the database's work. They hold without: issuing locks the codes it
    # hands out and the group (services.promo_codes_issue), and deleting a group waits for those locks and
    # unlinks its issues first (services.promo_code_group_delete).
    promo_code = models.ForeignKey(
        PromoCode, on_delete=models.SET_NULL, null=True, related_name="issues", db_constraint=False
    )
    group = models.ForeignKey(
        PromoCodeGroup, on_delete=models.SET_NULL, null=True, related_name="issues", db_constraint=False
    )
    code = models.CharField(max_length=MAX_CODE_LENGTH, help_text="copy: kept when the code or group goes")
    group_name = models.CharField(max_length=100, help_text="copy: kept when the group goes")
    kind = models.CharField(max_length=10, choices=IssueKind.choices)
    # The mailing that issued it; a plain id until the mailings app exists to point at.
    mailing_id = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["profile", "group", "-created"], name="promo_issue_profile_group"),
            models.Index(fields=["created"], name="promo_issue_created"),
        ]

    def __str__(self) -> str:
        return f"{self.code} -> customer {self.profile_id} ({self.kind})"
