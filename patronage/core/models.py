from __future__ import annotations

from django.db import models


class ThrottleCount(models.Model):
    """Attempts at something guarded (a sign-in, a reset mail) counted for one key in a fixed window.

    Written only by ``core.throttle`` in one atomic statement per attempt; the key is a hash, so neither
    emails nor addresses are stored.
    """

    key = models.CharField(max_length=100, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "throttle count"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
