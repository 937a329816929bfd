"""Reading pasted or uploaded promo codes: one code per line, checked in Python before anything is written.

Rules
    - Each line is trimmed; blank lines are ignored (they are not codes and not problems).
    - A code is letters A-Z / a-z, digits, ``-`` and ``_``, at most ``MAX_CODE_LENGTH`` characters: what a
      shopper can type at checkout. Codes are case-sensitive (as uploaded), like the systems generating them.
    - Anything else is an invalid line, reported by its number and skipped.
    - A code repeated within the upload is reported as a duplicate of its first line and skipped.
      Duplicates of codes already in the environment are found afterwards, in SQL (see services).

Problems are reported up to ``MAX_REPORTED`` per upload; the counts are always exact. A million bad lines
would otherwise be a million objects in memory and a page nobody reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from patronage.core.errors import ErrorDetail

from .models import MAX_CODE_LENGTH

MAX_REPORTED = 1000
ALLOWED = "letters A-Z, digits, - and _"
_CODE = re.compile(r"[A-Za-z0-9_-]+")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_-]")

INVALID = "Invalid code"
DUPLICATE = "Duplicate code"


@dataclass
class ParsedCodes:
    codes: list[tuple[int, str]] = field(default_factory=list)  # (line number, code), first occurrences
    invalid: int = 0
    duplicates: int = 0  # within the upload
    problems: list[ErrorDetail] = field(default_factory=list)
    unreported: int = 0  # problems beyond MAX_REPORTED

    def report(self, title: str, details: str, line: int) -> None:
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(ErrorDetail(title=title, details=details, pointer="code", line=line))
        else:
            self.unreported += 1


def invalid_reason(code: str) -> str:
    if len(code) > MAX_CODE_LENGTH:
        return f"longer than {MAX_CODE_LENGTH} characters ({len(code)})"
    bad = _BAD_CHAR.search(code)
    char = bad.group() if bad else "?"
    shown = repr(char) if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
    return f"{code[:20]!r} has the character {shown}; a code may have {ALLOWED}"


def parse_codes(lines: Iterable[str], *, first_line: int = 1) -> ParsedCodes:
    """The good codes of ``lines`` (numbered from ``first_line``) and what was wrong with the others."""
    parsed = ParsedCodes()
    seen: dict[str, int] = {}
    good = parsed.codes
    fullmatch = _CODE.fullmatch
    for number, raw in enumerate(lines, start=first_line):
        code = raw.strip()
        if not code:
            continue
        if len(code) > MAX_CODE_LENGTH or fullmatch(code) is None:
            if number == 1 and code.startswith("\ufeff") and fullmatch(code[1:]):
                code = code[1:]  # a file saved by Excel or Notepad starts with a byte-order mark
            else:
                parsed.invalid += 1
                parsed.report(INVALID, f"Line {number}: {invalid_reason(code)}", number)
                continue
        first = seen.setdefault(code, number)
        if first != number:
            parsed.duplicates += 1
            parsed.report(DUPLICATE, f"Line {number}: {code} repeats line {first}; skipped", number)
            continue
        good.append((number, code))
    return parsed
