from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import UnfoldAdminSelectWidget

from .models import Environment
from .services import environments_ensure


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
