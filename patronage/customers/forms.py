"""Back-office forms for customers and groups.

Thin: the services validate (uniqueness, phone numbers, birthdays) and their errors land on the fields they
point at, so staff see each problem next to what they typed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import (
    INPUT_CLASSES,
    SELECT_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanWidget,
)

from patronage.core.errors import DomainError
from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field
from patronage.workspace.models import Environment

from .attributes import format_phone
from .models import CustomerGroup, CustomerProfile
from .selectors import groups_of
from .services import ProfileInput, group_check_name, profile_check


def add_domain_errors(form: forms.BaseForm, exc: DomainError) -> None:
    """Each problem on the field its pointer names, the rest above the form."""
    for detail in exc.details:
        form.add_error(detail.pointer if detail.pointer in form.fields else None, detail.details)


class AttributesWidget(UnfoldAdminTextareaWidget):
    """Custom attributes as a table of name, type and value (``customers/attributes.js``).

    The textarea holds the JSON object the form posts; the script draws the table over it, keeps it in
    step and offers the JSON itself as an advanced view. Without JavaScript the textarea is the editor.
    Types: text, number, true/false, date (a YYYY-MM-DD text) and, for lists and nested objects, JSON.
    """

    template_name = "admin/customers/widgets/attributes.html"

    class Media:
        js = ["customers/attributes.js"]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        # The script's inputs look like the form's others.
        context["input_classes"] = " ".join(INPUT_CLASSES)
        context["select_classes"] = " ".join(SELECT_CLASSES)
        return context

    def format_value(self, value: Any) -> str:
        # Nothing yet (a new customer) is an empty object, not ``null``.
        text = super().format_value(value) or ""
        return "{}" if text.strip() in {"", "null"} else text


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
        widget=AttributesWidget(attrs={"rows": 4}),
        help_text='A name and a value each, e.g. tier: gold. As JSON: {"tier": "gold", "visits": 3}.',
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

    # A new customer's environment: the one the customer list shows (set by the admin, see get_form).
    list_environment: Environment | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        environment = self.instance.environment if self.instance.pk else self.list_environment
        field = self.fields.get("environment")
        if not self.instance.pk and environment is not None and field is not None:
            # Fixed by the list's switch, so every choice below (groups) is of that environment.
            field.disabled = True
            field.initial = environment.slug
            other = "Sandbox" if environment.slug == Environment.LIVE else "Live"
            field.help_text = f"To add a {other.lower()} customer, switch the customer list to {other} first."
        if self.instance.pk and self.instance.phone and self.initial.get("phone") == self.instance.phone:
            # Stored E.164 (+12015550123), shown as people read it; saving normalizes it again.
            self.initial["phone"] = format_phone(self.instance.phone)
        group = self.fields.get("group")
        if isinstance(group, forms.ModelChoiceField) and environment is not None:
            group.queryset = groups_of(environment)

    def clean_attributes(self) -> Any:
        value = self.cleaned_data.get("attributes")
        # Not an object: the service says so on the field.
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


REMOVE_FROM_GROUP = "none"


class AssignGroupForm(forms.Form):
    """The group picker of the bulk "put in a group" action.

    Nothing is preselected: staff pick a group, or "remove them from their group", which takes a second,
    explicit confirmation (a box to tick, saying how many customers leave their group).
    """

    group = forms.ChoiceField(
        label="Group",
        widget=UnfoldAdminSelectWidget,
        error_messages={"required": "Pick a group, or choose to remove them from their group."},
    )
    confirm_remove = forms.BooleanField(label="", required=False, widget=UnfoldBooleanWidget)

    def __init__(self, *args: Any, environment: Environment, count: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups = {str(g.pk): g for g in groups_of(environment)}
        self.count = count
        them = f"these {count} customers" if count != 1 else "this customer"
        self.fields["group"].choices = [  # type: ignore[attr-defined]
            ("", "Choose a group…"),
            *((pk, g.name) for pk, g in self.groups.items()),
            (REMOVE_FROM_GROUP, "Remove them from their group (no group)"),
        ]
        self.fields["confirm_remove"].label = f"Yes, take {them} out of their group"
        self.fields["confirm_remove"].help_text = "Only when removing: they will be in no group."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen = cleaned.get("group")
        if chosen == REMOVE_FROM_GROUP:
            if not cleaned.get("confirm_remove"):
                self.add_error(
                    "confirm_remove",
                    f"Tick this box to confirm: {self.count} customer{'s' if self.count != 1 else ''} "
                    "will leave their group.",
                )
            cleaned["target"] = None
        elif chosen:
            cleaned["target"] = self.groups[chosen]
        return cleaned

    def removes(self) -> bool:
        return self.is_bound and self.data.get("group") == REMOVE_FROM_GROUP


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
