"""Staff writes leave a row in Django's admin log, in the same transaction as the write."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.db import models


def audit(actor: Any, obj: models.Model, flag: int, message: str) -> None:
    """Log ``message`` against ``obj`` for a staff user; writes made by no one (the CLI, the API) skip it."""
    if actor is not None and actor.pk is not None:
        LogEntry.objects.log_actions(
            user_id=actor.pk, queryset=[obj], action_flag=flag, change_message=message, single_object=True
        )
