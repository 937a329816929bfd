"""Back-office forms for mailings: the draft (templates, sender, recipients) and the preview's customer.

Thin: ``services.mailing_check`` and ``services.parse_email_list`` validate; their errors land on the
fields they point at.
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.html import escape
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from patronage.core.errors import DomainError
from patronage.customers.forms import add_domain_errors
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.segments.models import Segment
from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field

from .models import Mailing
from .services import MailingInput, mailing_check, parse_email_list
from .templating import CLIENT_FIELDS

DEFAULT_LIST_MAX_BYTES = 50 * 1024 * 1024
MACROS_HELP = (
    "A template: {{ client.name }} and the other client fields (" + ", ".join(CLIENT_FIELDS) + "); "
    "{{ client.promocode('Group name') }} issues the next code of a group of promo codes, "
    "{{ client.last_promocode('Group name') }} repeats the customer's last code from it. "
    "{{ unsubscribe_url }} is the recipient's unsubscribe link; a body without it gets a standard "
    "unsubscribe footer appended."
)


def _monospace(rows: int) -> UnfoldAdminTextareaWidget:
    return UnfoldAdminTextareaWidget(
        attrs={"rows": rows, "class": "font-mono text-sm", "spellcheck": "false"}
    )


class MailingForm(EnvironmentChoiceMixin, forms.ModelForm):
    environment = environment_field(
        "The mailing goes to customers of this environment and issues its promo codes."
    )
    email_list = forms.FileField(
        label="Email list",
        required=False,
        widget=UnfoldAdminFileFieldWidget,
        help_text="One email per line, or a CSV with an “email” column.",
    )

    class Meta:
        model = Mailing
        fields = [
            "environment",
            "name",
            "sender",
            "subject",
            "html_body",
            "text_body",
            "audience",
            "customer_group",
            "segment",
            "email_list",
        ]
        widgets = {
            "name": UnfoldAdminTextInputWidget,
            "sender": UnfoldAdminTextInputWidget,
            "subject": UnfoldAdminTextInputWidget,
            "html_body": _monospace(14),
            "text_body": _monospace(8),
            "audience": UnfoldAdminRadioSelectWidget,
            "customer_group": UnfoldAdminSelectWidget,
            "segment": UnfoldAdminSelectWidget,
        }
        help_texts = {"html_body": MACROS_HELP, "text_body": "A template, like the HTML body; plain text."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Admin pages print help texts as HTML: the example's <address> must be escaped to show.
        self.fields["sender"].help_text = escape("e.g. “Demo Shop <news@shop.example>”")
        group = self.fields["customer_group"]
        assert isinstance(group, forms.ModelChoiceField)
        group.queryset = CustomerGroup.objects.select_related("environment").order_by("environment", "name")
        group.label_from_instance = lambda obj: f"{obj.name} ({obj.environment.name})"  # type: ignore[method-assign]
        self.fields[
            "customer_group"
        ].help_text = "With “A customer group”: its members with marketing consent."
        instance = self.instance
        if instance.pk and instance.audience == Mailing.Audience.GROUP and instance.customer_group_id is None:
            self.fields["customer_group"].help_text += escape(
                f" Group: {instance.customer_group_name} (deleted): choose another group or other recipients."
            )
        segment = self.fields["segment"]
        assert isinstance(segment, forms.ModelChoiceField)
        segment.queryset = Segment.objects.select_related("environment").order_by("environment", "name")
        segment.label_from_instance = lambda obj: f"{obj.name} ({obj.environment.name})"  # type: ignore[method-assign]
        segment.help_text = (
            "With “A segment”: its members with marketing consent when the send starts "
            "(the recipients are fixed then)."
        )
        limit = self.list_max_bytes() / 1048576
        self.fields["email_list"].help_text += f" At most {limit:g} MiB."
        if self.instance.pk and self.instance.email_list_name:
            self.fields["email_list"].help_text += (
                f" Now: {self.instance.email_list_name} ({self.instance.list_emails.count():,} addresses);"
                " a new file replaces it."
            )
        self.emails: list[str] | None = None

    @staticmethod
    def list_max_bytes() -> int:
        return int(getattr(settings, "PATRONAGE_EMAIL_LIST_MAX_BYTES", DEFAULT_LIST_MAX_BYTES))

    def clean_email_list(self) -> UploadedFile | None:
        upload = self.cleaned_data.get("email_list")
        if upload is None:
            return None
        if upload.size is not None and upload.size > self.list_max_bytes():
            raise forms.ValidationError(f"The list is larger than {self.list_max_bytes() / 1048576:g} MiB")
        try:
            text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
            lines = text.read().splitlines()
            text.detach()
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The list is not UTF-8 text") from exc
        try:
            parse_email_list(lines)
        except DomainError as exc:
            raise forms.ValidationError([detail.details for detail in exc.details]) from exc
        self.emails = lines
        return upload

    def mailing_input(self) -> MailingInput:
        data = self.cleaned_data
        upload = data.get("email_list")
        return MailingInput(
            name=data.get("name") or "",
            sender=data.get("sender") or "",
            subject=data.get("subject") or "",
            html_body=data.get("html_body") or "",
            text_body=data.get("text_body") or "",
            audience=data.get("audience") or Mailing.Audience.CONSENTING,
            customer_group=data.get("customer_group"),
            segment=data.get("segment"),
            email_list=(upload.name or "list.csv", self.emails)
            if upload is not None and self.emails
            else None,
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        environment = self.environment_of()
        if environment is None or self.errors:
            return cleaned
        data = self.mailing_input()
        has_list = data.email_list is not None or (self.instance.pk and self.instance.email_list_name)
        if data.audience == Mailing.Audience.EMAIL_LIST and not has_list:
            self.add_error("email_list", "Upload the list of emails to mail.")
        try:
            mailing_check(environment, data)
        except DomainError as exc:
            add_domain_errors(self, exc)
        return cleaned


class PreviewForm(forms.Form):
    customer = forms.CharField(
        label="Customer",
        max_length=1000,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "Email or integration ID"}),
        help_text="Whose message to show. Nothing is issued or sent.",
    )

    def __init__(self, *args: Any, mailing: Mailing, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mailing = mailing

    def clean_customer(self) -> CustomerProfile:
        given = self.cleaned_data["customer"].strip()
        profiles = CustomerProfile.objects.filter(environment_id=self.mailing.environment_id).select_related(
            "group"
        )
        profile = (
            profiles.filter(email__iexact=given).first() or profiles.filter(integration_id=given).first()
        )
        if profile is None:
            raise forms.ValidationError(f"No customer {given!r} in {self.mailing.environment}")
        return profile
