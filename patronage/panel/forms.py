"""Panel forms only parse input; the rules (password strength, phone format) live in customers.accounts."""

from __future__ import annotations

from typing import Any

from django import forms

from patronage.core.errors import DomainError


def add_domain_errors(form: forms.Form, error: DomainError) -> None:
    """Show a service's errors on the fields they point at, or above the form when they point nowhere."""
    for detail in error.details:
        field = detail.pointer if detail.pointer in form.fields else None
        form.add_error(field, detail.details)


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True, "inputmode": "email"}),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def focus_password(self) -> None:
        """After a failed attempt the email is kept: the cursor belongs in the password field."""
        self.fields["email"].widget.attrs.pop("autofocus", None)
        self.fields["password"].widget.attrs["autofocus"] = True


class PasswordResetForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True, "inputmode": "email"}),
    )


class SetPasswordForm(forms.Form):
    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
        help_text="At least 8 characters; not only digits and not a common password.",
    )
    new_password2 = forms.CharField(
        label="Repeat the new password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class PasswordChangeForm(SetPasswordForm):
    current_password = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    field_order = ["current_password", "new_password1", "new_password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].widget.attrs.pop("autofocus", None)


class AccountForm(forms.Form):
    name = forms.CharField(
        required=False, max_length=255, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    phone = forms.CharField(
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
        help_text="With the country code, e.g. +1 415 555 0123.",
    )
    accepts_marketing = forms.BooleanField(required=False, label="Send me news and offers by email")
