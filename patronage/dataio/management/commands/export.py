import os
import sys
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.errors import DomainError
from patronage.dataio.registry import exporter_get, exporters
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get


class Command(BaseCommand):
    help = (
        "Export as CSV (e.g. `patronage export customers --accepts-marketing yes -o list.csv`), "
        "with the same filters as the back-office list. `patronage export KIND --help` lists them."
    )
    # Runtime commands like dumpdata: the checks cost a noticeable part of a short run.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
        for exporter in exporters():
            sub = kinds.add_parser(exporter.kind, help=exporter.label, description=f"Export {exporter.label}")
            sub.add_argument(
                "--environment",
                choices=[slug for slug, _ in Environment.SLUGS],
                default=Environment.LIVE,
                help="Environment whose data is exported (default: %(default)s)",
            )
            sub.add_argument("-o", "--output", help="file to write (default: standard output)")
            exporter.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        exporter = exporter_get(options["kind"])
        environment = environment_get(options["environment"])
        try:
            stream = exporter.stream(environment, options)
        except DomainError as exc:
            lines = [detail.details for detail in exc.details]
            raise CommandError("\n".join(lines), returncode=2) from exc
        output = options.get("output")
        if not output:
            self._write(stream, self._stdout())
            return
        path = Path(output)
        # Written aside and renamed when complete: a failed export never leaves a half file behind.
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as target:
                self._write(stream, target)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self.stderr.write(f"Exported {stream.rows:,} {exporter.label.lower()} to {path}.")

    def _stdout(self) -> IO[bytes]:
        return getattr(self.stdout._out, "buffer", None) or sys.stdout.buffer

    def _write(self, stream: Any, target: IO[bytes]) -> None:
        for chunk in stream:
            target.write(chunk)
        target.flush()
