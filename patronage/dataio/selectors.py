from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from patronage.core import clock
from patronage.core.csvio import format_row, neutralize

from .models import ImportJob, ImportProblem

# A running job whose progress has not moved for this long has most likely lost its worker (the final
# save of a file of millions of rows writes no progress for a minute or so).
STALLED_AFTER = dt.timedelta(minutes=10)


def import_job_stalled(job: ImportJob) -> bool:
    return job.status == ImportJob.Status.RUNNING and job.updated < clock.now() - STALLED_AFTER


def import_job_status(job: ImportJob) -> dict[str, Any]:
    """What the job page polls: small, and enough to draw the progress bar and the counts."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.finished,
        "phase": job.phase,
        "percent": job.percent,
        "processed_rows": job.processed_rows,
        "total_rows": job.total_rows,
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "unchanged": job.unchanged_count,
        "problems": job.problem_count,
        "message": job.message,
        "stalled": import_job_stalled(job),
    }


def import_problems(job: ImportJob) -> QuerySet[ImportProblem]:
    return ImportProblem.objects.filter(job=job).order_by("line", "id")


def import_problems_csv(job: ImportJob) -> Iterator[bytes]:
    """The bad rows as a CSV file (line, column, problem), streamed."""
    yield format_row(["line", "column", "problem"]).encode()
    rows = import_problems(job).values_list("line", "column", "message").iterator(chunk_size=2000)
    buffer: list[str] = []
    for line, column, message in rows:
        buffer.append(format_row([str(line or ""), neutralize(column), neutralize(message)]))
        if len(buffer) >= 1000:
            yield "".join(buffer).encode()
            buffer = []
    if buffer:
        yield "".join(buffer).encode()
