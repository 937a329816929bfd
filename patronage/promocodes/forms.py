"""Back-office form for a group of promo codes: its name, and codes pasted or uploaded as a file.

Thin: the form only turns what was pasted or uploaded into lines; which lines are codes, duplicates or
invalid is ``services.promo_codes_upload``'s decision, reported per line number.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from patronage.workspace.forms import EnvironmentChoiceMixin, environment_field
from patronage.workspace.models import Environment

from .models import PromoCodeGroup
from .selectors import group_name_taken

# The upload runs inside the request: large enough for a million codes, small enough to stay quick.
FILE_MAX_BYTES: int = getattr(settings, "PATRONAGE_PROMO_CODES_MAX_BYTES", 20 * 1024 * 1024)


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: only CR, LF and CRLF end a line (``str.splitlines`` also splits
    on form feeds and Unicode separators, which would shift every reported line number after them)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class PromoCodeGroupForm(EnvironmentChoiceMixin, forms.ModelForm):
    # Chosen by slug, like the customer and offer forms.
    environment = environment_field(
        "Codes are unique within an environment. Cannot be changed once the group is saved."
    )
    name = forms.CharField(
        max_length=100,
        widget=UnfoldAdminTextInputWidget,
        help_text="Unique within the environment; mailings refer to the group by it.",
    )
    codes = forms.CharField(
        label="Upload promo codes",
        required=False,
        strip=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 8, "placeholder": "SPRING-7KQ2\nSPRING-9XW4\n…"}),
        help_text="One code per line. For more than a few thousand codes, upload a file instead.",
    )
    codes_file = forms.FileField(
        label="Or upload a file",
        required=False,
        widget=UnfoldAdminFileFieldWidget,
    )

    class Meta:
        model = PromoCodeGroup
        fields = ["environment", "name", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_mib = FILE_MAX_BYTES / 1048576
        self.fields[
            "codes_file"
        ].help_text = f"A text or CSV file in UTF-8 with one code per line, at most {limit_mib:g} MiB."
        if self.instance.pk:
            self.fields["codes"].label = "Upload more promo codes"

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        environment = self.instance.environment if self.instance.pk else self.data_environment()
        if environment is not None and group_name_taken(
            environment=environment, name=name, exclude_pk=self.instance.pk
        ):
            raise forms.ValidationError(
                f"The {environment.name} environment already has a group named {name!r}."
            )
        return name

    def data_environment(self) -> Environment | None:
        # clean_name runs after clean_environment (field order), so the chosen environment is known.
        environment: Environment | None = self.cleaned_data.get("environment")
        return environment

    def clean_codes_file(self) -> list[str] | None:
        upload = self.cleaned_data.get("codes_file")
        if not upload:
            return None
        if upload.size > FILE_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1048576:.1f} MiB; at most {FILE_MAX_BYTES / 1048576:g} MiB "
                "is accepted. Split it and upload the parts one after another."
            )
        raw = upload.read()
        try:
            # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark.
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise forms.ValidationError(
                f"The file is not UTF-8 text (line {line}). Save it as UTF-8 (CSV UTF-8) and upload it again."
            ) from exc
        if "\x00" in text:
            raise forms.ValidationError("The file is not a text file.")
        return split_lines(text)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        pasted = split_lines(cleaned.get("codes") or "")
        from_file = cleaned.get("codes_file")
        if from_file is not None and any(line.strip() for line in pasted):
            # Line numbers must point into one text: the staff member's paste or their file.
            self.add_error("codes_file", "Paste codes or upload a file, not both.")
        cleaned["lines"] = from_file if from_file is not None else pasted
        return cleaned

    def code_lines(self) -> list[str]:
        lines: list[str] = self.cleaned_data.get("lines") or []
        return lines

    def validate_unique(self) -> None:
        # clean_name did it, case-insensitively and with a message that names the environment.
        pass
