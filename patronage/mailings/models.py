"""Mass mailings: templates, who receives them, and one delivery row per recipient.

A delivery moves ``pending -> ready -> sending -> sent | failed``, or to ``skipped`` with the reason:

- ``pending``: the recipient is fixed (materialized when the send starts) but nothing was issued yet;
- ``ready``: the customer as they are now is kept on the delivery (``client``), its promo codes are
  reserved and recorded as issues, and the message was rendered once to learn which codes it shows, all in
  the one transaction that prepared its batch;
- ``sending``: rendered again from the same snapshot and codes (rendering is deterministic, so it is the
  message preparation saw), stored, and claimed just before the SMTP conversation; committed first, so a
  crash leaves at most the one message in flight ambiguous, and that one is never sent again;
- ``sent`` / ``failed`` (with the SMTP server's reason) / ``skipped`` (no consent, no customer with this
  email, the group ran out of codes, a template error for this customer).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from patronage.core import clock
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.segments.models import Segment
from patronage.workspace.models import Environment


class Mailing(models.Model):
    class Audience(models.TextChoices):
        CONSENTING = "consenting", "All customers with marketing consent"
        GROUP = "group", "A customer group"
        SEGMENT = "segment", "A segment"
        EMAIL_LIST = "email_list", "An uploaded email list"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="mailings")
    name = models.CharField(max_length=200)
    sender = models.CharField(max_length=254, help_text='e.g. "Demo Shop <news@shop.example>"')
    subject = models.CharField(max_length=998, help_text="A template, like the bodies")
    html_body = models.TextField("HTML body", blank=True)
    text_body = models.TextField("text body", blank=True)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.CONSENTING)
    # A group may be deleted like any other (its customers stay; frozen recipients stay): the mailing then
    # shows the name it had.
    customer_group = models.ForeignKey(
        CustomerGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="mailings"
    )
    customer_group_name = models.CharField(max_length=255, blank=True, editable=False)
    # Its members are read when the send starts (the recipients are frozen then); a deleted segment leaves
    # a draft without recipients until another is chosen.
    segment = models.ForeignKey(
        Segment, on_delete=models.SET_NULL, null=True, blank=True, related_name="mailings"
    )
    email_list_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created = models.DateTimeField(default=clock.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)
    # One sender at a time: whoever holds an unexpired lease sends; a crashed sender's lease runs out and
    # the next one takes over (see services.mailing_send_run).
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    # Why the last sender stopped early (e.g. the SMTP server could not be reached); cleared on resume.
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [("send_mailing", "Can start and resume the sending of mailings")]

    def __str__(self) -> str:
        return self.name

    @property
    def templates(self) -> dict[str, str]:
        return {"subject": self.subject, "html_body": self.html_body, "text_body": self.text_body}


class MailingListEmail(models.Model):
    """One address of an uploaded email list (lower case; the line it came from)."""

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="list_emails")
    email = models.CharField(max_length=254)
    line = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailing", "email"], name="mailing_list_email_unique")]

    def __str__(self) -> str:
        return self.email


# A delivery's reason when its customer is deleted during a send (set by services and sending alike).
CUSTOMER_GONE = "The customer was deleted after the send started"


class MailingDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    # No index of its own: every index below starts with it (a plain one misled the planner into sorting a
    # whole new mailing's deliveries for each batch before its statistics were gathered). No database
    # constraint either: the start inserts a mailing's deliveries while holding the mailing's row lock, so
    # the per-row check would only cost time (deleting a mailing deletes its deliveries through Django).
    mailing = models.ForeignKey(
        Mailing, on_delete=models.CASCADE, related_name="deliveries", db_index=False, db_constraint=False
    )
    # No database constraint: its per-row check was a third of a send's start (fixing 100,000 recipients).
    # A customer deleted while the start runs can leave an id that points nowhere; preparation treats it
    # like a deleted customer (skipped, nothing issued), and later deletions skip the customer's deliveries
    # (services.deliveries_forget_customers) before Django sets the link to NULL.
    profile = models.ForeignKey(
        CustomerProfile,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    email = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    # What the message knows of the customer, taken when the delivery is prepared (see mailings.clients):
    # the message is rendered from it, so later edits of the profile do not change a prepared message.
    client = models.JSONField(null=True, blank=True)
    # The message as handed to the SMTP server (byte for byte, apart from MIME framing); stored when the
    # delivery is claimed for sending. Until then it is rendered on demand from ``client`` and the codes.
    subject = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    prepared_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "mailing deliveries"
        ordering = ["id"]
        constraints = [
            # One message per address per mailing, however often the address appears in an upload.
            models.UniqueConstraint(fields=["mailing", "email"], name="mailing_delivery_one_per_email"),
        ]
        indexes = [
            # The sender's batches and the progress counts.
            models.Index(fields=["mailing", "status", "id"], name="mailing_delivery_status"),
            models.Index(
                fields=["profile"], condition=models.Q(profile__isnull=False), name="mailing_delivery_profile"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"
