"""Sender addresses of mailings, checked when a draft is saved.

A sender is ``news@shop.example`` or ``Demo Shop <news@shop.example>`` (the name may be quoted), on one
line. A line break would let the address inject headers, and Django refuses to send it: checked at save,
it never fails a whole send later.
"""

from __future__ import annotations

import unicodedata
from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.mail.message import sanitize_address
from django.core.validators import validate_email

EXAMPLE = "“Demo Shop <news@shop.example>”"


def sender_problem(sender: str) -> str | None:
    """Why ``sender`` cannot be the From of a message, in the user's words; None when it can."""
    value = sender.strip()
    if not value:
        return f"Enter the sender, e.g. {EXAMPLE}"
    if "\r" in value or "\n" in value:
        return "The sender must be on one line: remove the line break"
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        return "The sender contains an invisible control character: type it again"
    try:
        sanitize_address(value, "utf-8")
    except ValueError:
        return f"{value!r} is not one sender address; write it like {EXAMPLE}"
    _, address = parseaddr(value)
    if " " in address:  # "Demo Shop news@shop.example": the name without its <...>
        return f"Put the address in angle brackets after the name, like {EXAMPLE}"
    try:
        validate_email(address)
    except ValidationError:
        return f"{address!r} is not a valid email address; write the sender like {EXAMPLE}"
    return None
