"""Making codes from a pattern, and telling which values an application already uses.

A pattern is Talon.One's ``couponPattern``: ``#`` stands for one random character of the alphabet
(``validCharacters``), every other character is kept. Randomness comes from the operating system
(``secrets``): codes are bearer tokens and must not be guessable from one another.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable

from patronage.core.errors import ValidationFailed
from patronage.promocodes.models import PromoCode
from patronage.workspace.models import Application

from .models import MAX_CODE_LENGTH, MIN_CODE_LENGTH, Coupon, normalize

DEFAULT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read and typed by people
PLACEHOLDER = "#"
# A pattern must offer this many times more codes than asked for, so that drawing stays cheap (few
# collisions to draw again) and the codes stay hard to guess.
HEADROOM = 10


def capacity(pattern: str, alphabet: str) -> int:
    return len(set(alphabet)) ** pattern.count(PLACEHOLDER)


def check_pattern(pattern: str, alphabet: str, count: int) -> None:
    """Refuse a pattern that cannot make ``count`` distinct codes of the allowed length."""
    if PLACEHOLDER not in pattern:
        raise ValidationFailed(f"The pattern {pattern!r} has no # for a random character")
    if len(pattern) < MIN_CODE_LENGTH or len(pattern) > MAX_CODE_LENGTH:
        raise ValidationFailed(
            f"A code pattern must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} characters; {pattern!r} has "
            f"{len(pattern)}"
        )
    if not alphabet or any(c.isspace() for c in alphabet):
        raise ValidationFailed("The characters to choose from must be given and contain no spaces")
    room = capacity(pattern, alphabet)
    if room < count * HEADROOM:
        hashes = math.ceil(math.log(count * HEADROOM, max(len(set(alphabet)), 2)))
        raise ValidationFailed(
            f"The pattern {pattern!r} makes at most {room:,} different codes from {len(set(alphabet))} "
            f"characters; {count:,} codes need at least {hashes} # in it"
        )


def random_code(pattern: str, alphabet: str) -> str:
    choice = secrets.choice
    return "".join(choice(alphabet) if c == PLACEHOLDER else c for c in pattern)


def random_codes(pattern: str, alphabet: str, count: int, *, case: str) -> list[str]:
    """``count`` distinct codes (in the application's case), in no particular order."""
    pool = "".join(dict.fromkeys(normalize(alphabet, case)))
    fixed = normalize(pattern.replace(PLACEHOLDER, "\0"), case).replace("\0", PLACEHOLDER)
    made: set[str] = set()
    while len(made) < count:
        made.update(random_code(fixed, pool) for _ in range(count - len(made)))
    return list(made)


def taken_values(application: Application, values: Iterable[str]) -> set[str]:
    """Of these (normalized) values, those the application already uses for a coupon or that are a promo
    code of its environment."""
    values = list(dict.fromkeys(values))
    taken: set[str] = set()
    for start in range(0, len(values), 5000):
        chunk = values[start : start + 5000]
        taken.update(
            Coupon.objects.filter(application=application, value__in=chunk).values_list("value", flat=True)
        )
        taken.update(
            PromoCode.objects.filter(environment_id=application.environment_id, code__in=chunk).values_list(
                "code", flat=True
            )
        )
    return taken
