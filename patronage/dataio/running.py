"""Running an import job once (in a worker's task or the CLI) and failing the jobs whose process went away.

Apart from ``services.py`` (which stores and queues a job) so that the arrows point one way:
services -> tasks -> running.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from typing import IO, Any

from django.db import transaction

from patronage.core import clock
from patronage.core.errors import DomainError, ErrorDetail

from .models import CHUNK_BYTES, ImportFileChunk, ImportJob, ImportProblem
from .registry import ImportOutcome, Progress, importer_get
from .selectors import STALLED_AFTER

logger = logging.getLogger(__name__)

PROBLEM_BATCH = 2000
# The back office polls once a second; writing progress more often would only cost commits.
PROGRESS_WRITE_SECONDS = 0.5


class StoredUpload(io.RawIOBase):
    """The stored upload as a byte stream, fetched one chunk (one query) at a time."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.position = 0
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if not self.buffer:
            data = (
                ImportFileChunk.objects.filter(job=self.job, position=self.position)
                .values_list("data", flat=True)
                .first()
            )
            if data is None:
                return 0
            self.buffer = bytes(data)
            self.position += 1
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size


def open_upload(job: ImportJob) -> IO[bytes]:
    return io.BufferedReader(StoredUpload(job), buffer_size=CHUNK_BYTES)


class _ProblemWriter:
    """Stores bad rows in batches as the importer reports them."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.pending: list[ImportProblem] = []
        self.count = 0

    def __call__(self, problems: Sequence[ErrorDetail]) -> None:
        for problem in problems:
            self.pending.append(
                ImportProblem(
                    job=self.job,
                    line=problem.line,
                    column=(problem.pointer or "")[:255],
                    message=problem.details,
                )
            )
        self.count += len(problems)
        if len(self.pending) >= PROBLEM_BATCH:
            self.flush()

    def flush(self) -> None:
        ImportProblem.objects.bulk_create(self.pending, batch_size=PROBLEM_BATCH)
        self.pending = []


class _JobProgress:
    """Passes progress to the CLI's listener at once and to the job row at most twice a second."""

    def __init__(self, job: ImportJob, listener: Progress | None) -> None:
        self.job = job
        self.listener = listener
        self.written_at = 0.0

    def __call__(self, *, phase: str, rows: int, fraction: float) -> None:
        if self.listener is not None:
            self.listener(phase=phase, rows=rows, fraction=fraction)
        now = time.monotonic()
        if now - self.written_at < PROGRESS_WRITE_SECONDS:
            return
        self.written_at = now
        ImportJob.objects.filter(pk=self.job.pk).update(
            phase=phase[:100],
            processed_rows=rows,
            percent=max(0, min(99, int(fraction * 100))),
            updated=clock.now(),
        )


def _summary(outcome: ImportOutcome) -> str:
    if not outcome.applied:
        good = outcome.total_rows - outcome.bad_rows
        rows = f"{outcome.bad_rows:,} row{'s' if outcome.bad_rows != 1 else ''}"
        verb = "has" if outcome.bad_rows == 1 else "have"
        other = f" to import the other {good:,} row{'s' if good != 1 else ''}" if good else ""
        return (
            f"{rows} {verb} problems, so nothing was imported. Fix them and upload the file again, "
            f"or choose “Skip bad rows”{other}."
        )
    if outcome.total_rows == 0:
        return "The file has no rows after its header: nothing was imported."
    text = f"Created {outcome.created:,}, updated {outcome.updated:,}"
    if outcome.unchanged:
        text = f"Created {outcome.created:,}, {outcome.unchanged:,} unchanged (already there)"
        if outcome.updated:
            text += f", updated {outcome.updated:,}"
    if outcome.skipped:
        text += f", skipped {outcome.skipped:,} bad row{'s' if outcome.skipped != 1 else ''}"
    return text + "."


def _finish(job: ImportJob, *, status: str, message: str, outcome: ImportOutcome, problems: int) -> None:
    now = clock.now()
    fields = {
        "status": status,
        "message": message,
        "phase": "Done" if status == ImportJob.Status.SUCCEEDED else "Stopped",
        "percent": 100,
        "total_rows": outcome.total_rows,
        "processed_rows": outcome.total_rows,
        "created_count": outcome.created,
        "updated_count": outcome.updated,
        "skipped_count": outcome.skipped,
        "unchanged_count": outcome.unchanged,
        "problem_count": problems,
        "finished_at": now,
        "updated": now,
    }
    # An update, not save(): a job someone deleted meanwhile stays deleted.
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    # The file was only kept for the worker; the outcome and the bad rows stay.
    ImportFileChunk.objects.filter(job=job).delete()


STALLED_MESSAGE = (
    "The import stopped: its worker or command went away (no progress for {minutes} minutes). "
    "Nothing was imported; upload the file again."
)


@transaction.atomic
def import_jobs_stop_stalled() -> list[int]:
    """Fail the running jobs that made no progress for ``STALLED_AFTER`` (their process was killed) and
    delete their stored uploads; the ids of those jobs.

    Nothing of such a job was saved (the data changes in one transaction at its end). Run before every
    import and when the back office shows a stalled job.
    """
    now = clock.now()
    stalled = ImportJob.objects.filter(status=ImportJob.Status.RUNNING, updated__lt=now - STALLED_AFTER)
    ids = list(stalled.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    if not ids:
        return []
    minutes = int(STALLED_AFTER.total_seconds() // 60)
    ImportJob.objects.filter(pk__in=ids).update(
        status=ImportJob.Status.FAILED,
        phase="Stopped",
        message=STALLED_MESSAGE.format(minutes=minutes),
        finished_at=now,
        updated=now,
    )
    ImportFileChunk.objects.filter(job_id__in=ids).delete()
    for job_id in ids:
        logger.warning("Import job %s stalled (its process went away): marked failed, upload deleted", job_id)
    return ids


def import_job_run(
    *, job: ImportJob, source: IO[bytes] | None = None, listener: Progress | None = None
) -> ImportOutcome:
    """Run a queued job once: from its stored upload, or from ``source`` (the CLI's local file).

    Never raises for a bad file: the job ends ``failed`` with the reason and the bad rows. Unexpected
    errors also fail the job (nothing imported) and are re-raised for the worker's log.
    """
    import_jobs_stop_stalled()
    started = clock.now()
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=started, updated=started, phase="Starting"
    )
    if not claimed:
        logger.warning("Import job %s is not queued any more; not running it again", job.pk)
        return ImportOutcome()
    job.refresh_from_db()
    importer = importer_get(job.kind)
    problems = _ProblemWriter(job)
    outcome = ImportOutcome()
    # Only kinds that declare options are given them: the others keep their plain signature.
    extra: dict[str, Any] = {"options": dict(job.options or {})} if importer.options else {}
    if importer.takes_job:
        extra["job"] = job
    try:
        outcome = importer.run(
            source=source if source is not None else open_upload(job),
            size=job.size,
            environment=job.environment,
            skip_bad_rows=job.skip_bad_rows,
            progress=_JobProgress(job, listener),
            problems=problems,
            **extra,
        )
    except DomainError as exc:
        problems(exc.details)
        problems.flush()
        _finish(
            job, status=ImportJob.Status.FAILED, message=exc.message, outcome=outcome, problems=problems.count
        )
        return outcome
    except BaseException:
        try:
            problems.flush()
            _finish(
                job,
                status=ImportJob.Status.FAILED,
                message="The import stopped on an unexpected error; nothing was imported.",
                outcome=outcome,
                problems=problems.count,
            )
        except Exception:  # e.g. the database went away: the original error matters more
            logger.exception("Could not mark import job %s as failed", job.pk)
        raise
    problems.flush()
    # A file whose rows were all there already succeeded too: the database holds what it says.
    imported = outcome.applied and outcome.created + outcome.updated + outcome.unchanged > 0
    _finish(
        job,
        status=ImportJob.Status.SUCCEEDED if imported else ImportJob.Status.FAILED,
        message=_summary(outcome),
        outcome=outcome,
        problems=problems.count,
    )
    return outcome
