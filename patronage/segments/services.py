"""Writes about segments: create, change, delete. A segment's rules are checked before they are saved."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.db import transaction

from patronage.core import clock
from patronage.core.audit import audit
from patronage.core.naming import checked_name, save_named
from patronage.workspace.models import Environment

from .models import Segment
from .rules import check

NOUN = "segment"


@transaction.atomic
def segment_create(
    *, environment: Environment, name: str, rules: Any, description: str = "", actor: Any = None
) -> Segment:
    """A new segment; ``UnprocessableInput`` (pointers under ``/rules``) when the rules are malformed."""
    check(rules, environment=environment, pointer="/rules")
    segment = Segment(
        environment=environment,
        name=checked_name(Segment, environment=environment, name=name, noun=NOUN),
        description=description.strip(),
        rules=rules,
    )
    save_named(segment, noun=NOUN)
    audit(actor, segment, ADDITION, "Created")
    return segment


@transaction.atomic
def segment_update(
    *, segment: Segment, name: str, rules: Any, description: str = "", actor: Any = None
) -> Segment:
    check(rules, environment=segment.environment, pointer="/rules")
    segment.name = checked_name(Segment, environment=segment.environment, name=name, noun=NOUN, pk=segment.pk)
    segment.description = description.strip()
    segment.rules = rules
    segment.updated = clock.now()
    save_named(segment, noun=NOUN)
    audit(actor, segment, CHANGE, "Changed")
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: Any = None) -> None:
    """Delete a segment. Mailings that were sent to it keep their recipients (they froze them at the
    start); a draft mailing aimed at it must be given other recipients before it can be sent."""
    audit(actor, segment, DELETION, "Deleted")
    segment.delete()
