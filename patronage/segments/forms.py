"""The segment form of the back office: name, description and the rule tree the builder edits."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from patronage.core.errors import DomainError, ErrorDetail
from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field

from .models import Segment
from .rules import check


class SegmentForm(EnvironmentChoiceMixin, forms.ModelForm):
    environment = environment_field("Whose customers the segment describes; fixed once saved.")
    # The builder writes the tree here as JSON; without JavaScript it is still an editable textarea.
    rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "class": "font-mono text-sm", "spellcheck": "false"}),
        help_text="The rule tree as JSON (the builder above writes it).",
    )

    class Meta:
        model = Segment
        fields = ["environment", "name", "description", "rules"]
        widgets = {
            "name": UnfoldAdminTextInputWidget,
            "description": UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule_problems: list[ErrorDetail] = []
        if not self.is_bound:
            self.initial["rules"] = json.dumps(self.instance.rules)

    def clean_rules(self) -> Any:
        try:
            return json.loads(self.cleaned_data["rules"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        environment = self.environment_of()
        if environment is None or "rules" not in cleaned:
            return cleaned
        try:
            check(cleaned["rules"], environment=environment, pointer="/rules")
        except DomainError as exc:
            self.rule_problems = exc.details
            self.add_error("rules", [f"{d.pointer}: {d.details}" for d in exc.details])
        return cleaned
