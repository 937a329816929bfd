"""Back-office forms for campaigns: the campaign page (settings, budgets, Talang rules), templates and Try it.

Thin: the Talang compiler and ``services.limits_check`` are the validators; this module parses what was
typed and says their problems in the marketer's words, on the line they point at.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from patronage.core.errors import ErrorCollector, ErrorDetail
from patronage.customer_sessions.services import CartItemInput
from patronage.customers.models import CustomerGroup
from patronage.workspace.models import Application

from .models import Campaign, EvaluationGroup
from .services import CampaignInput, limits_check
from .talang import RulesetInvalid, compile_ruleset
from .templates_catalog import Template

JSON_WIDGET_ATTRS = {"class": "font-mono text-sm w-full", "spellcheck": "false"}


def _json_widget(rows: int) -> forms.Textarea:
    return forms.Textarea(
        attrs={
            **JSON_WIDGET_ATTRS,
            "rows": rows,
            "class": JSON_WIDGET_ATTRS["class"]
            + " border border-base-200 rounded-default p-2 bg-white dark:bg-base-900 dark:border-base-700",
        }
    )


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


# ---- JSON pointers in words ----------------------------------------------------------------------------


def _index(part: str) -> int | None:
    return int(part) if part.isdigit() else None


def where(pointer: str | None, rules: Any = None) -> str:
    """A JSON pointer into a ruleset in the builder's words: ``/rules/0/condition/1/0`` ->
    "Rule 1, condition 1"; ``/rules/1/effects/0/2`` -> "Rule 2, effect 1, argument 2".

    Conditions are numbered as the builder draws them: in ``["and", c1, c2]`` the first condition is at
    index 1 of the list, so ``/condition/1`` is condition 1.
    """
    parts = (pointer or "").strip("/").split("/")
    if parts[0] == "bindings":
        n = _index(parts[1]) if len(parts) > 1 else None
        return f"Binding {n + 1}" if n is not None else "The bindings"
    if parts[0] != "rules" or len(parts) < 2 or _index(parts[1]) is None:
        return "The rules"
    n = _index(parts[1]) or 0
    text = f"Rule {n + 1}"
    rest = parts[2:]
    if not rest:
        return text
    section, index = rest[0], _index(rest[1]) if len(rest) > 1 else None
    if section == "title":
        return f"{text}, its title"
    if section == "condition":
        rule = rules[n] if isinstance(rules, list) and n < len(rules) else {}
        condition = rule.get("condition") if isinstance(rule, dict) else None
        joined = isinstance(condition, list) and bool(condition) and condition[0] == "and"
        if index is not None and joined and index > 0:
            return f"{text}, condition {index}"
        return f"{text}, its condition"
    if section in ("effects", "failureEffects"):
        label = "effect" if section == "effects" else "failure effect"
        if index is None:
            return f"{text}, its {label}s"
        text = f"{text}, {label} {index + 1}"
        argument = _index(rest[2]) if len(rest) > 2 else None
        if argument == 0:
            return f"{text}, its name"
        return f"{text}, argument {argument}" if argument else text
    if section == "bindings":
        return f"{text}, binding {index + 1}" if index is not None else f"{text}, its bindings"
    return text


def budget_where(pointer: str | None) -> str:
    """``/limits/1/period`` -> "Budget 2"."""
    parts = (pointer or "").strip("/").split("/")
    n = _index(parts[1]) if len(parts) > 1 else None
    return f"Budget {n + 1}" if n is not None else "Budgets"


def rule_problem(detail: ErrorDetail, rules: Any) -> dict[str, Any]:
    """A compiler problem for the page: where (in words), what, and the pointer the builder places it by."""
    words = where(detail.pointer, rules)
    return {"pointer": detail.pointer or "/rules", "where": words, "message": f"{words}: {detail.details}"}


# ---- the campaign page ---------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    tags = forms.CharField(
        required=False,
        max_length=2000,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "summer, vip"}),
        help_text="Words to find the campaign by, separated by commas.",
    )
    evaluation_group = forms.ModelChoiceField(
        queryset=EvaluationGroup.objects.select_related("application").order_by("application__name", "id"),
        required=False,
        empty_label="Base group",
        widget=UnfoldAdminSelectWidget,
        help_text="Where the campaign sits in its application's evaluation tree.",
    )
    # The budget rows and the rule builder write these as JSON; without JavaScript they are the editors.
    limits = forms.CharField(
        label="Budgets",
        required=False,
        widget=_json_widget(3),
        help_text='As JSON: [{"action": "setDiscount", "limit": 1000, "entities": [], "period": "monthly"}].',
    )
    rules = forms.CharField(
        label="Talang",
        required=False,
        widget=_json_widget(14),
        help_text="The rules as Talang JSON: the builder writes it, and edits here show in the builder.",
    )

    class Meta:
        model = Campaign
        fields = ["application", "name", "description", "state", "start_time", "end_time"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule_problems: list[dict[str, Any]] = []
        self.rules_value: list[Any] = []
        campaign = self.instance
        groups = self.fields["evaluation_group"]
        if campaign.pk:
            groups.queryset = groups.queryset.filter(application_id=campaign.application_id)  # type: ignore[attr-defined]
            groups.label_from_instance = lambda g: str(g)  # type: ignore[attr-defined]
        else:
            groups.label_from_instance = lambda g: f"{g.application.name}: {g.name}"  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial["tags"] = ", ".join(campaign.tags or [])
            self.initial["limits"] = json.dumps(campaign.limits or [])
            if campaign.pk and campaign.evaluation_group_id and not campaign.evaluation_group.is_base:
                self.initial["evaluation_group"] = campaign.evaluation_group_id
            ruleset = campaign.active_ruleset if campaign.pk else None
            self.initial.setdefault("rules", json.dumps(ruleset.rules if ruleset else [], indent=2))

    @property
    def application(self) -> Application | None:
        if self.instance.pk:
            return self.instance.application
        return self.cleaned_data.get("application") if hasattr(self, "cleaned_data") else None

    def clean_tags(self) -> list[str]:
        tags = [t.strip() for t in (self.cleaned_data.get("tags") or "").split(",")]
        return list(dict.fromkeys(t for t in tags if t))

    def clean_limits(self) -> list[dict[str, Any]]:
        limits = _parse_json(self.cleaned_data.get("limits") or "[]", "The budgets")
        errors = ErrorCollector()
        normalized = limits_check(limits, pointer="/limits", errors=errors)
        if errors.problems:
            raise forms.ValidationError([f"{budget_where(p.pointer)}: {p.details}" for p in errors.problems])
        return normalized

    def clean_rules(self) -> list[Any]:
        rules = _parse_json(self.cleaned_data.get("rules") or "[]", "The Talang")
        self.rules_value = rules if isinstance(rules, list) else []
        try:
            compile_ruleset(rules, self.bindings())
        except RulesetInvalid as exc:
            self.rule_problems = [rule_problem(d, rules) for d in exc.details]
            raise forms.ValidationError([p["message"] for p in self.rule_problems]) from exc
        return rules  # type: ignore[no-any-return]

    def bindings(self) -> list[Any]:
        """The ruleset's bindings, kept as they are (the page edits the rules)."""
        ruleset = self.instance.active_ruleset if self.instance.pk else None
        return list(ruleset.bindings) if ruleset else []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        application = self.application
        name = (cleaned.get("name") or "").strip()
        if application is not None and name:
            taken = Campaign.objects.filter(application=application, name=name, deleted_at=None)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("name", f"{application.name} already has a campaign named “{name}”.")
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", "The campaign must end after it starts.")
        group = cleaned.get("evaluation_group")
        if group is not None and application is not None and group.application_id != application.pk:
            self.add_error("evaluation_group", f"Pick a group of {application.name}'s evaluation tree.")
        return cleaned

    def validate_unique(self) -> None:
        pass  # clean() checked the name, with the message on the field

    def campaign_input(self) -> CampaignInput:
        data = self.cleaned_data
        group = data.get("evaluation_group")
        return CampaignInput(
            name=data["name"],
            description=data.get("description") or "",
            state=data["state"],
            start_time=data.get("start_time"),
            end_time=data.get("end_time"),
            tags=data.get("tags") or [],
            limits=data.get("limits") or [],
            evaluation_group_id=group.pk if group is not None else None,
        )


# ---- templates -----------------------------------------------------------------------------------------


class TemplateForm(forms.Form):
    """The answers one template needs, for one application (its customer groups are the choices)."""

    name = forms.CharField(max_length=200, widget=UnfoldAdminTextInputWidget, label="Campaign name")

    def __init__(self, *args: Any, template: Template, application: Application, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", template.key)
        super().__init__(*args, **kwargs)
        self.template, self.application = template, application
        self.fields["name"].initial = template.label
        for answer in template.answers:
            self.fields[answer.name] = self._field(answer.kind, answer.label, answer.help, answer.required)

    def _field(self, kind: str, label: str, help_text: str, required: bool) -> forms.Field:
        if kind == "group":
            return forms.ModelChoiceField(
                queryset=CustomerGroup.objects.filter(environment_id=self.application.environment_id),
                label=label,
                to_field_name="name",
                widget=UnfoldAdminSelectWidget,
                empty_label="Pick a group",
                help_text=help_text
                or f"A customer group of the {self.application.environment.name} environment.",
                error_messages={"invalid_choice": "Pick a customer group of the application's environment."},
            )
        if kind in ("percent", "money"):
            return forms.DecimalField(
                label=label,
                min_value=Decimal("0.01") if kind == "percent" else Decimal(0),
                max_value=Decimal(100) if kind == "percent" else None,
                decimal_places=2 if kind == "percent" else 4,
                widget=UnfoldAdminDecimalFieldWidget,
                help_text=help_text or (f"In {self.application.currency}." if kind == "money" else ""),
            )
        return forms.CharField(
            label=label,
            required=required,
            max_length=200,
            widget=UnfoldAdminTextInputWidget,
            help_text=help_text,
        )

    def rules(self) -> list[dict[str, Any]]:
        data = dict(self.cleaned_data)
        name = data.pop("name")
        if "group" in data:
            data["group"] = data["group"].name
        return self.template.build(name=name, **data)


# ---- Try it --------------------------------------------------------------------------------------------


class TryItForm(forms.Form):
    customer = forms.CharField(
        label="Customer integration ID",
        required=False,
        max_length=1000,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "Leave empty for an anonymous cart"}),
        help_text="The customer's profile as the shop would send it, or none.",
    )
    cart = forms.CharField(
        label="Cart items (JSON)",
        required=False,
        widget=_json_widget(6),
        help_text='The rows above write it; or paste a cartItems array: [{"sku": "MUG", "name": "Mug", '
        '"category": "kitchen", "price": 9.5, "quantity": 2}].',
    )
    shipping = forms.DecimalField(
        label="Shipping cost",
        required=False,
        min_value=Decimal(0),
        decimal_places=4,
        widget=UnfoldAdminDecimalFieldWidget,
        help_text="Sent as the additional cost “shipping”; leave empty for none.",
    )

    def clean_cart(self) -> list[CartItemInput]:
        rows = _parse_json(self.cleaned_data.get("cart") or "[]", "The cart")
        if not isinstance(rows, list):
            raise forms.ValidationError("The cart is a list of items: [{...}, {...}].")
        items, problems = [], []
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                problems.append(f'Item {n}: an item is an object such as {{"sku": "MUG", "price": 9.5}}.')
                continue
            sku = str(row.get("sku") or "").strip()
            if not sku and not row.get("name") and not row.get("price"):
                continue  # a blank row of the cart editor
            try:
                price = Decimal(str(row.get("price", 0) or 0))
                quantity = int(str(row.get("quantity", 1) or 1))
                if not price.is_finite() or price < 0 or quantity < 1:
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                problems.append(
                    f"Item {n}: the price is a number, 0 or more, and the quantity a whole number, 1 or more."
                )
                continue
            if not sku:
                problems.append(f"Item {n}: give it a SKU.")
                continue
            attributes = row["attributes"] if isinstance(row.get("attributes"), dict) else {}
            items.append(
                CartItemInput(
                    sku=sku,
                    quantity=quantity,
                    price=price,
                    name=str(row.get("name") or ""),
                    category=str(row.get("category") or ""),
                    attributes=attributes,
                )
            )
        if problems:
            raise forms.ValidationError(problems)
        return items
