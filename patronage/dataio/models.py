from __future__ import annotations

from django.conf import settings
from django.db import models

from patronage.core import clock
from patronage.workspace.models import Environment


class ImportJob(models.Model):
    """One uploaded file of some kind (see registry), run in the background, with its outcome.

    Progress fields are written while the job runs, in their own small commits, so the back office can
    poll them; the data itself changes in one transaction at the end (or not at all).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=50)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="import_jobs")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0, help_text="Bytes")
    skip_bad_rows = models.BooleanField(
        default=False, help_text="Import the good rows and leave the bad ones out (else nothing is imported)."
    )
    # The kind's settings besides the file (registry.ImportOption), e.g. {"offer": 12}.
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=100, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    skipped_count = models.PositiveIntegerField("skipped", default=0)
    unchanged_count = models.PositiveIntegerField("unchanged", default=0)
    problem_count = models.PositiveIntegerField("problems", default=0)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "import"
        verbose_name_plural = "imports"

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.kind}, {self.filename})"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


# The size of one stored piece of an upload (never the whole file in memory at once).
CHUNK_BYTES = 1024 * 1024


class ImportFileChunk(models.Model):
    """The uploaded file, in pieces, in the database: any worker on any machine can read it."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["job", "position"]
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="import_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.position}"


class ImportProblem(models.Model):
    """A bad row (``line``) or a problem with the whole file (no line)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="problems")
    line = models.PositiveIntegerField(null=True, blank=True)
    column = models.CharField(max_length=255, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["job", "line", "id"]
        indexes = [models.Index(fields=["job", "line"], name="import_problem_job_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message
