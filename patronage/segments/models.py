"""A segment: a named rule tree over what is known about the customers of one environment.

The tree (see ``rules``) is stored as JSON and compiled to one query whenever members are asked for, so a
segment is always current; a mailing freezes its members when it starts.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.workspace.models import Environment

from .rules import empty_tree


class Segment(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="segments")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=empty_tree)
    created = models.DateTimeField(default=clock.now, editable=False)
    updated = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("environment", Lower("name"), name="segment_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name
