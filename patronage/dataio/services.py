"""Import jobs: store the upload and queue it. ``running.py`` runs it (in the worker's task or the CLI)."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.db import transaction

from patronage.workspace.models import Environment

from .models import CHUNK_BYTES, ImportFileChunk, ImportJob
from .registry import importer_get
from .tasks import run_import_job

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024


def max_upload_bytes() -> int:
    return int(getattr(settings, "PATRONAGE_IMPORT_MAX_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


@transaction.atomic
def import_job_create(
    *,
    kind: str,
    environment: Environment,
    filename: str,
    size: int,
    skip_bad_rows: bool,
    options: dict[str, str] | None = None,
    upload: IO[bytes] | None = None,
    actor: Any = None,
    enqueue: bool = True,
) -> ImportJob:
    """Record an import; with ``upload``, store the file for a worker and queue the job after commit.

    ``options`` are the kind's settings as a person gave them (see ``registry.ImportOption``); they are
    cleaned here, so a bad one fails before anything is stored. The CLI passes no upload and runs the
    job itself from its local file (:func:`import_job_run`).
    """
    importer = importer_get(kind)
    cleaned = {
        name: importer.option(name).clean(value, environment)
        for name, value in (options or {}).items()
        if value not in (None, "")
    }
    job = ImportJob.objects.create(
        kind=kind,
        environment=environment,
        options=cleaned,
        filename=filename[:255],
        size=size,
        skip_bad_rows=skip_bad_rows,
        created_by=actor if actor is not None and actor.pk is not None else None,
    )
    if upload is not None:
        position = 0
        # One row per MiB (never the whole file in memory at once).
        while piece := upload.read(CHUNK_BYTES):
            ImportFileChunk.objects.create(job=job, position=position, data=piece)
            position += 1
    if job.created_by is not None:
        LogEntry.objects.log_actions(
            user_id=job.created_by.pk,
            queryset=[job],
            action_flag=ADDITION,
            change_message=f"Uploaded {job.filename} ({kind}, {environment.slug})",
            single_object=True,
        )
    if enqueue:
        transaction.on_commit(lambda: run_import_job.enqueue(job.pk))
    return job
