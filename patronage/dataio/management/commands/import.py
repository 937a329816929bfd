import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.errors import DomainError
from patronage.core.progress import cli_progress
from patronage.dataio.models import ImportJob
from patronage.dataio.registry import ImportOutcome, importer_get, importers
from patronage.dataio.running import import_job_run
from patronage.dataio.selectors import import_problems
from patronage.dataio.services import import_job_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

SHOW_PROBLEMS = 50


class Command(BaseCommand):
    help = (
        "Import a CSV file (e.g. `patronage import customers customers.csv`). By default one bad row "
        "stops the import and nothing changes; --skip-bad-rows imports the good rows. "
        "Exit status 1 when nothing was imported."
    )
    # Runtime commands like dumpdata: the checks cost a noticeable part of a short run.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = [importer.kind for importer in importers()]
        parser.add_argument("kind", choices=kinds, help="what the file holds")
        parser.add_argument("file", help="the CSV file (UTF-8, header first)")
        parser.add_argument(
            "--environment",
            choices=[slug for slug, _ in Environment.SLUGS],
            default=Environment.LIVE,
            help="Environment whose data the file changes (default: %(default)s)",
        )
        parser.add_argument(
            "--skip-bad-rows", action="store_true", help="import the good rows, report and leave out the bad"
        )
        # Each kind's own options (e.g. offer-assignments' --offer), named as they are stored.
        seen: set[str] = set()
        for importer in importers():
            for option in importer.options:
                if option.name not in seen:
                    seen.add(option.name)
                    parser.add_argument(
                        f"--{option.name}",
                        dest=f"option_{option.name}",
                        help=f"({importer.kind}) {option.help}",
                    )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}", returncode=2)
        importer = importer_get(options["kind"])
        given = {
            key.removeprefix("option_"): value
            for key, value in options.items()
            if key.startswith("option_") and value is not None
        }
        try:
            job = import_job_create(
                kind=importer.kind,
                environment=environment_get(options["environment"]),
                filename=path.name,
                size=path.stat().st_size,
                skip_bad_rows=options["skip_bad_rows"],
                options=given,
                enqueue=False,
            )
        except DomainError as exc:
            raise CommandError(exc.message, returncode=2) from exc
        started = time.monotonic()
        with path.open("rb") as source, cli_progress(self.stderr.write) as listener:
            outcome = import_job_run(job=job, source=source, listener=listener)
        seconds = time.monotonic() - started
        job.refresh_from_db()
        self._report(job, outcome, seconds)
        if job.status != ImportJob.Status.SUCCEEDED:
            sys.exit(1)

    def _summary(self, job: ImportJob, outcome: ImportOutcome) -> str:
        """The job's message, in the command line's words where the back office names its own checkbox."""
        if outcome.applied or not outcome.bad_rows or job.status == ImportJob.Status.SUCCEEDED:
            return job.message
        bad, good = outcome.bad_rows, outcome.total_rows - outcome.bad_rows
        rows = f"{bad:,} row{'s' if bad != 1 else ''} {'has' if bad == 1 else 'have'} problems"
        other = f" to import the other {good:,} row{'s' if good != 1 else ''}" if good else ""
        return (
            f"{rows}, so nothing was imported. Fix them and run the import again, "
            f"or add --skip-bad-rows{other}."
        )

    def _report(self, job: ImportJob, outcome: ImportOutcome, seconds: float) -> None:
        succeeded = job.status == ImportJob.Status.SUCCEEDED
        style = self.style.SUCCESS if succeeded else self.style.ERROR
        summary = self._summary(job, outcome)
        self.stdout.write(style(summary))
        # A problem with the whole file (a bad header) is the summary itself: not printed a second time.
        problems = [p for p in import_problems(job)[:SHOW_PROBLEMS] if p.message != job.message]
        if problems:
            self.stdout.write("Problems:")
            for problem in problems:
                where = f"line {problem.line}" if problem.line else "file"
                self.stdout.write(f"  {where}: {problem.message}")
            if job.problem_count > len(problems):
                self.stdout.write(
                    f"  ... and {job.problem_count - len(problems)} more: download them all from "
                    f"the back office, Import/Export, import #{job.pk}"
                )
        rows = job.total_rows or 0
        rate = f" ({rows / seconds:,.0f} rows/s)" if seconds > 0 and rows else ""
        for note in outcome.notes:
            self.stdout.write(note + ".")
        self.stdout.write(f"{rows:,} rows in {seconds:.1f} s{rate}; import #{job.pk}.")
