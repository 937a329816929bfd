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
            self.add_error("rules", [f"{where(d.pointer)}: {d.details}" for d in exc.details])
        return cleaned


def where(pointer: str | None) -> str:
    """A JSON pointer into the rules in the builder's words: ``/rules/children/1/children/0/value`` ->
    "Line 2.1, its value" (lines numbered from 1, nested groups with dots)."""
    parts = (pointer or "").split("/")[2:]  # after "/rules"
    numbers: list[str] = []
    member = ""
    i = 0
    while i < len(parts):
        if parts[i] == "children" and i + 1 < len(parts) and parts[i + 1].isdigit():
            numbers.append(str(int(parts[i + 1]) + 1))
            i += 2
        else:
            member = " ".join(p.replace("_", " ") for p in parts[i:] if not p.isdigit() and p != "params")
            break
    line = f"Line {'.'.join(numbers)}" if numbers else "The rules"
    return f"{line}, its {member}" if member else line
