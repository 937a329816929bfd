from django.db import models

from patronage.core import clock
from patronage.workspace.models import Application


class IdempotencyRecord(models.Model):
    """A mutating request made with an ``Idempotency-Key`` and, once finished, its response for replays."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, query and body")
    created = models.DateTimeField(default=clock.now)
    completed = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.BinaryField(default=b"")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["application", "key"], name="idempotency_key_unique")]
        indexes = [models.Index(fields=["created"], name="idempotency_created")]

    def __str__(self) -> str:
        return self.key
