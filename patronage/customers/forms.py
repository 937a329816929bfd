"""Back-office forms for customers and groups.

Thin: the services validate (uniqueness, phone numbers, birthdays) and their errors land on the fields they
point at, so staff see each problem next to what they typed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from patronage.core.errors import DomainError
from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field
from patronage.workspace.models import Environment

from .models import CustomerGroup, CustomerProfile
from .selectors import groups_of
from .services import ProfileInput, group_check_name, profile_check


def add_domain_errors(form: forms.BaseForm, exc: DomainError) -> None:
    """Each problem on the field its pointer names, the rest above the form."""
    for detail in exc.details:
        form.add_error(detail.pointer if detail.pointer in form.fields else None, detail.details)


class CustomerProfileForm(EnvironmentChoiceMixin, forms.ModelForm):
    # Chosen by slug so the list's environment switch can prefill it (?environment=sandbox).
    environment = environment_field()
    integration_id = forms.CharField(
        label="Integration ID",
        max_length=1000,
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text="The shop's ID for this customer. Leave empty to make one up.",
    )
    phone = forms.CharField(
        label="Mobile phone",
        max_length=40,
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text="Any common format, e.g. (201) 555-0123 or +48 601 234 567; stored as +12015550123.",
    )
    attributes = forms.JSONField(
        label="Custom attributes",
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}),
        help_text='A JSON object, e.g. {"tier": "gold", "newsletter": "weekly"}.',
    )

    class Meta:
        model = CustomerProfile
        fields = [
            "environment",
            "integration_id",
            "name",
            "email",
            "phone",
            "birth_date",
            "group",
            "tax_exempt",
            "accepts_marketing",
            "attributes",
        ]
        labels = {"birth_date": "Birthday", "accepts_marketing": "Marketing consent"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.fields.get("group")
        if isinstance(group, forms.ModelChoiceField):
            if self.instance.pk:
                group.queryset = groups_of(self.instance.environment)
            else:
                # The environment is picked in the same form: say which one each group belongs to.
                group.queryset = CustomerGroup.objects.select_related("environment").order_by(
                    "environment__slug", "name"
                )
                group.label_from_instance = lambda obj: f"{obj.name} ({obj.environment.name})"  # type: ignore[method-assign]

    def clean_attributes(self) -> Any:
        value = self.cleaned_data.get("attributes")
        return {} if value is None else value

    def profile_input(self) -> ProfileInput:
        data = self.cleaned_data
        attributes: Any = data.get("attributes")
        return ProfileInput(
            name=data.get("name") or "",
            email=data.get("email") or None,
            phone=data.get("phone") or "",
            birth_date=data.get("birth_date"),
            group=data.get("group"),
            tax_exempt=bool(data.get("tax_exempt")),
            accepts_marketing=bool(data.get("accepts_marketing")),
            attributes={} if attributes is None else attributes,
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        environment = self.instance.environment if self.instance.pk else cleaned.get("environment")
        if environment is None:
            return cleaned
        try:
            checked = profile_check(
                environment=environment,
                data=self.profile_input(),
                integration_id=None
                if self.instance.pk
                else (cleaned.get("integration_id") or "").strip() or None,
                pk=self.instance.pk,
            )
        except DomainError as exc:
            add_domain_errors(self, exc)
        else:
            cleaned.update(name=checked.name, email=checked.email, phone=checked.phone)
        return cleaned

    def validate_unique(self) -> None:
        # profile_check did it, case-insensitively and with the message on the field.
        pass


class CustomerGroupForm(EnvironmentChoiceMixin, forms.ModelForm):
    environment = environment_field()

    class Meta:
        model = CustomerGroup
        fields = ["environment", "name"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        environment = self.instance.environment if self.instance.pk else cleaned.get("environment")
        if environment is not None and "name" in cleaned:
            try:
                cleaned["name"] = group_check_name(
                    environment=environment, name=cleaned["name"], pk=self.instance.pk
                )
            except DomainError as exc:
                add_domain_errors(self, exc)
        return cleaned

    def validate_unique(self) -> None:
        # group_check_name did it, case-insensitively and with the message on the field.
        pass


class AssignGroupForm(forms.Form):
    """The group picker of the bulk "put in a group" action."""

    group = forms.ModelChoiceField(
        queryset=CustomerGroup.objects.none(),
        required=False,
        empty_label="No group (take them out of their group)",
        widget=UnfoldAdminSelectWidget,
    )

    def __init__(self, *args: Any, environment: Environment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups_of(environment)  # type: ignore[attr-defined]


class CountRangeForm(forms.Form):
    """Two whole numbers side by side (list filter), named ``<name>_min`` and ``<name>_max``."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for end, placeholder in (("min", "At least"), ("max", "At most")):
            self.fields[f"{name}_{end}"] = forms.IntegerField(
                label="",
                required=False,
                min_value=0,
                widget=forms.NumberInput(
                    attrs={"placeholder": placeholder, "class": " ".join(INPUT_CLASSES)}
                ),
            )


class MonthDayRangeForm(forms.Form):
    """A day-and-month window (list filter), named ``<name>_from`` and ``<name>_to``, as MM-DD."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for end, placeholder in (("from", "From, MM-DD"), ("to", "To, MM-DD")):
            self.fields[f"{name}_{end}"] = forms.RegexField(
                regex=r"^\s*\d{1,2}-\d{1,2}\s*$",
                label="",
                required=False,
                error_messages={"invalid": "Type a month and day such as 12-24."},
                widget=forms.TextInput(attrs={"placeholder": placeholder, "class": " ".join(INPUT_CLASSES)}),
            )
