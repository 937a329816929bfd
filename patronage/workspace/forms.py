from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from unfold.widgets import UnfoldAdminSelectWidget

from patronage.core.errors import DomainError

from .models import Environment, ManagementKey
from .services import api_key_check_expiry, environments_ensure, management_key_check_owner


def environment_field(help_text: str = "") -> forms.ModelChoiceField:
    """The environment, chosen by slug (so a list's ``?environment=sandbox`` can prefill it); live first."""
    return forms.ModelChoiceField(
        queryset=Environment.objects.all(),
        to_field_name="slug",
        empty_label=None,
        initial=Environment.LIVE,
        widget=UnfoldAdminSelectWidget,
        help_text=help_text,
    )


class EnvironmentChoiceMixin:
    """For forms that offer the environments as choices: the choices are never empty.

    A migration creates both environments, but a database flush (tests, a restore) drops them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        environments_ensure()
        super().__init__(*args, **kwargs)

    def environment_of(self) -> Environment | None:
        """A saved object's environment (fixed), else the one chosen in the form, once cleaned."""
        instance = getattr(self, "instance", None)
        if instance is not None and instance.pk:
            environment: Environment = instance.environment
            return environment
        chosen = getattr(self, "cleaned_data", {}).get("environment")
        return chosen if isinstance(chosen, Environment) else None


class ManagementKeyForm(forms.ModelForm):
    """A new Management API key: a superuser picks its owner among active staff, anyone else makes their own.

    ``actor`` (the signed-in user) is set on a subclass by the admin, which builds the form without the
    ``user`` field for anyone but a superuser.
    """

    actor: Any = None

    class Meta:
        model = ManagementKey
        fields = ["user", "name", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields.get("user")
        if isinstance(owner, forms.ModelChoiceField):
            owner.queryset = (
                get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
            )
            owner.initial = self.actor.pk
        else:
            self.instance.user = self.actor

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        owner = cleaned.get("user") if "user" in self.fields else self.actor
        if owner is not None:
            try:
                management_key_check_owner(user=owner, actor=self.actor)
            except DomainError as exc:
                self.add_error("user" if "user" in self.fields else None, exc.message)
        try:
            api_key_check_expiry(cleaned.get("expires_at"))
        except DomainError as exc:
            self.add_error("expires_at", exc.message)
        return cleaned
